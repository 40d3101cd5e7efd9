import CKernels

extension Tensor {
    /// The row-wise kernel call shared by softmax and log-softmax, split across cores.
    private func rowKernel(
        into result: Tensor,
        _ kernel: @escaping (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int64, Int64) -> Void
    ) {
        let columns = shape[rank - 1]
        let p = UncheckedSendable((storage.base, result.storage.base))
        Parallel.forEachChunk(of: rowCount, minimumChunk: max(1, 32_768 / max(columns, 1))) { _, range in
            let (x, y) = p.value
            kernel(x + range.lowerBound * columns, y + range.lowerBound * columns, Int64(range.count), Int64(columns))
        }
    }

    /// softmax(scale · x) over the last axis.
    public func softmax(scale: Float = 1) -> Tensor {
        let columns = shape[rank - 1]
        let result = Tensor(uninitializedShape: shape)
        rowKernel(into: result) { ssl_softmax_rows($0, $1, $2, $3, scale) }
        return result.recording("softmax", inputs: [self]) { g in
            let dx = Tensor(uninitializedShape: self.shape)
            ssl_softmax_backward_rows(
                result.storage.base, g.storage.base, dx.storage.base, Int64(self.rowCount), Int64(columns), scale)
            return [dx]
        }
    }

    /// log(softmax(scale · x)) over the last axis, computed stably.
    public func logSoftmax(scale: Float = 1) -> Tensor {
        let columns = shape[rank - 1]
        let result = Tensor(uninitializedShape: shape)
        rowKernel(into: result) { ssl_log_softmax_rows($0, $1, $2, $3, scale) }
        return result.recording("logSoftmax", inputs: [self]) { g in
            let dx = Tensor(uninitializedShape: self.shape)
            ssl_log_softmax_backward_rows(
                result.storage.base, g.storage.base, dx.storage.base, Int64(self.rowCount), Int64(columns), scale)
            return [dx]
        }
    }

    /// The cross-entropy `−Σₖ targets[k] · log softmax(self / temperature)[k]` of each row,
    /// shape `shape.dropLast()`: the loss between a teacher's probabilities and a student's
    /// logits in DINO-style objectives. `targets` are constants (no gradient flows into them).
    public func softCrossEntropy(targets: Tensor, temperature: Float) -> Tensor {
        precondition(
            targets.shape == shape,
            "softCrossEntropy: targets \(targets.describe) must match logits \(describe).")
        let columns = shape[rank - 1], rows = rowCount
        let logProbabilities = Tensor(uninitializedShape: shape)
        rowKernel(into: logProbabilities) { ssl_log_softmax_rows($0, $1, $2, $3, 1 / temperature) }
        let losses = Tensor(uninitializedShape: Array(shape.dropLast()))
        let l = logProbabilities.storage.base, p = targets.storage.base, out = losses.storage.base
        for row in 0..<rows {
            var total: Float = 0
            for c in 0..<columns { total -= p[row * columns + c] * l[row * columns + c] }
            out[row] = total
        }
        return losses.recording("softCrossEntropy", inputs: [self]) { g in
            // ∂/∂x_k = (softmax_k · Σⱼ pⱼ − p_k) / temperature, scaled by the row's upstream gradient.
            let dx = Tensor(uninitializedShape: self.shape)
            let upstream = g.storage.base, out = dx.storage.base
            let l = logProbabilities.storage.base, p = targets.storage.base
            let probabilities = Tensor(uninitializedShape: self.shape)
            ssl_exp(l, probabilities.storage.base, Int64(self.count))
            let q = probabilities.storage.base
            for row in 0..<rows {
                var mass: Float = 0
                for c in 0..<columns { mass += p[row * columns + c] }
                let factor = upstream[row] / temperature
                for c in 0..<columns {
                    let i = row * columns + c
                    out[i] = factor * (q[i] * mass - p[i])
                }
            }
            return [dx]
        }
    }
}
