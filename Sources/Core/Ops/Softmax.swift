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
        let rows = rowCount
        return result.recording("softmax", inputs: [self]) { [shape] g in
            let dx = Tensor(uninitializedShape: shape)
            ssl_softmax_backward_rows(result.storage.base, g.storage.base, dx.storage.base, Int64(rows), Int64(columns), scale)
            return [dx]
        }
    }

    /// log(softmax(scale · x)) over the last axis, computed stably.
    public func logSoftmax(scale: Float = 1) -> Tensor {
        let columns = shape[rank - 1]
        let result = Tensor(uninitializedShape: shape)
        rowKernel(into: result) { ssl_log_softmax_rows($0, $1, $2, $3, scale) }
        let rows = rowCount
        return result.recording("logSoftmax", inputs: [self]) { [shape] g in
            let dx = Tensor(uninitializedShape: shape)
            ssl_log_softmax_backward_rows(
                result.storage.base, g.storage.base, dx.storage.base, Int64(rows), Int64(columns), scale)
            return [dx]
        }
    }

    /// The cross-entropy `−Σₖ targets[k] · log softmax(self / temperature)[k]` of each row,
    /// shape `shape.dropLast()`: the loss between a teacher's probabilities and a student's
    /// logits in DINO-style objectives. `targets` are constants (no gradient flows into them).
    ///
    /// The derivative of each row's loss, `(softmax · Σⱼ targetsⱼ − targets) / temperature`, is
    /// formed during the forward pass and is all that is kept, so neither the logits nor the
    /// targets stay alive until the backward pass.
    public func softCrossEntropy(targets: Tensor, temperature: Float) -> Tensor {
        precondition(
            targets.shape == shape,
            "softCrossEntropy: targets \(targets.describe) must match logits \(describe).")
        let columns = shape[rank - 1], rows = rowCount
        let rowGradients = Tensor(uninitializedShape: shape)
        rowKernel(into: rowGradients) { ssl_log_softmax_rows($0, $1, $2, $3, 1 / temperature) }
        let losses = Tensor(uninitializedShape: Array(shape.dropLast()))
        let pointers = UncheckedSendable((rowGradients.storage.base, targets.storage.base, losses.storage.base))
        Parallel.forEachChunk(of: rows, minimumChunk: max(1, 32_768 / max(columns, 1))) { _, range in
            let (buffer, p, out) = pointers.value
            for row in range {
                let line = buffer + row * columns, target = p + row * columns
                var total: Float = 0, mass: Float = 0
                for c in 0..<columns {
                    total -= target[c] * line[c]
                    mass += target[c]
                }
                out[row] = total
                // Replace the log-probabilities by this row's derivative.
                ssl_exp(line, line, Int64(columns))
                for c in 0..<columns { line[c] = (line[c] * mass - target[c]) / temperature }
            }
        }
        return losses.recording("softCrossEntropy", inputs: [self]) { [shape] g in
            let dx = Tensor(uninitializedShape: shape)
            let upstream = g.storage.base, source = rowGradients.storage.base, out = dx.storage.base
            for row in 0..<rows {
                let factor = upstream[row]
                for c in 0..<columns { out[row * columns + c] = factor * source[row * columns + c] }
            }
            return [dx]
        }
    }
}
