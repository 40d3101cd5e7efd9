import CKernels

extension Tensor {
    /// Rows of a matrix view: every axis but the last folded into one.
    var rowCount: Int { rank == 0 ? 1 : count / max(shape[rank - 1], 1) }

    /// The matrix product. Rank-2 operands multiply as matrices; higher ranks multiply the last
    /// two axes batch by batch, and a rank-2 right operand is shared by every batch.
    public func matmul(_ other: Tensor) -> Tensor {
        precondition(
            rank >= 2 && other.rank >= 2 && shape[rank - 1] == other.shape[other.rank - 2],
            "matmul: \(describe) × \(other.describe) — inner extents must agree.")
        if other.rank == 2 {
            // Fold the batch into the rows: one GEMM.
            let m = rowCount, k = shape[rank - 1], n = other.shape[1]
            let result = Tensor(uninitializedShape: Array(shape.dropLast()) + [n])
            BLAS.gemm(
                m: m, n: n, k: k, a: storage.base, lda: k, b: other.storage.base, ldb: n,
                c: result.storage.base, ldc: n)
            return result.recording("matmul", inputs: [self, other]) { g in
                [
                    self.requiresGradient ? g.matmul(other.transposed()) : nil,
                    other.requiresGradient
                        ? Tensor.gemmResult(m: k, n: n, k: m, transposeA: true, self, g) : nil,
                ]
            }
        }
        precondition(
            Array(shape.dropLast(2)) == Array(other.shape.dropLast(2)),
            "matmul: batch axes of \(describe) and \(other.describe) must agree.")
        let batch = shape.dropLast(2).reduce(1, *)
        let m = shape[rank - 2], k = shape[rank - 1], n = other.shape[other.rank - 1]
        let result = Tensor(uninitializedShape: Array(shape.dropLast()) + [n])
        Tensor.batchedGemm(
            batch: batch, m: m, n: n, k: k, transposeA: false, transposeB: false,
            a: self, b: other, into: result)
        return result.recording("batchedMatmul", inputs: [self, other]) { g in
            [
                self.requiresGradient ? g.matmul(other.transposed()) : nil,
                other.requiresGradient ? self.transposed().matmul(g) : nil,
            ]
        }
    }

    /// A fully connected layer, `x · weightᵀ + bias`, with the weight in PyTorch's layout
    /// `[outputFeatures, inputFeatures]`; all leading axes of `x` are folded into rows so the
    /// whole batch is one GEMM.
    ///
    /// With a `residual` of the output's shape the result is `residual + (x · weightᵀ + bias)`,
    /// a transformer branch's projection and the skip connection around it, rounded as PyTorch
    /// rounds `residual + linear(x)`: the product then writes its rows without reading them,
    /// and the bias and the residual are added in one pass afterwards.
    public func linear(weight: Tensor, bias: Tensor? = nil, addingTo residual: Tensor? = nil) -> Tensor {
        precondition(
            weight.rank == 2 && rank >= 1 && shape[rank - 1] == weight.shape[1],
            "linear: input \(describe) does not fit weight \(weight.describe) "
                + "(expected last axis \(weight.shape.count == 2 ? weight.shape[1] : -1)).")
        if let bias {
            precondition(
                bias.shape == [weight.shape[0]],
                "linear: bias \(bias.describe) must have shape [\(weight.shape[0])].")
        }
        let m = rowCount, k = weight.shape[1], n = weight.shape[0]
        let result = Tensor(uninitializedShape: Array(shape.dropLast()) + [n])
        if let residual {
            precondition(
                residual.shape == result.shape,
                "linear: residual \(residual.describe) must have the output's shape \(result.shape).")
        }
        let out = result.storage.base
        let startsFromBias = bias != nil && residual == nil
        if let bias, startsFromBias {
            // Start from the bias in every row and accumulate the product onto it. The rows are
            // filled on every core: on one, the others would wait for it.
            let pointers = UncheckedSendable((bias.storage.base, out))
            Parallel.forEachChunk(of: m, minimumChunk: Parallel.minimumRows(ofWidth: n)) { _, rows in
                let (b, out) = pointers.value
                for row in rows { (out + row * n).update(from: b, count: n) }
            }
        }
        BLAS.gemm(
            transposeB: true, m: m, n: n, k: k, a: storage.base, lda: k, b: weight.storage.base,
            ldb: k, beta: startsFromBias ? 1 : 0, c: out, ldc: n)
        if let residual {
            let pointers = UncheckedSendable((out, bias?.storage.base, residual.storage.base))
            Parallel.forEachChunk(of: m, minimumChunk: Parallel.minimumRows(ofWidth: n)) { _, rows in
                let (out, b, skip) = pointers.value
                let offset = rows.lowerBound * n
                ssl_add_bias_and_residual(out + offset, b, skip + offset, Int64(rows.count), Int64(n))
            }
        }
        let inputs = [self, weight] + [bias, residual].compactMap { $0 }
        guard Tensor.recordsGradient(inputs) else { return result }
        // The input is kept for the weight's gradient only.
        let savedInput = weight.requiresGradient ? SavedActivation(self) : nil
        let inputRequiresGradient = requiresGradient, inputShape = shape
        return result.recording("linear", inputs: inputs) { g in
            let inputGradient = inputRequiresGradient
                ? Tensor.gemmResult(m: m, n: k, k: n, g, weight).reshaped(inputShape) : nil
            let weightGradient = savedInput.map { Tensor.gemmResult(m: n, n: k, k: m, transposeA: true, g, $0.tensor) }
            var gradients = [inputGradient, weightGradient]
            if let bias {
                gradients.append(bias.requiresGradient ? g.sumBroadcast(to: [n]) : nil)
            }
            if let residual { gradients.append(residual.requiresGradient ? g : nil) }
            return gradients
        }
    }

    /// op(A)·op(B) for operands viewed as matrices (rows × last axis), recording no history.
    static func gemmResult(
        m: Int, n: Int, k: Int, transposeA: Bool = false, transposeB: Bool = false,
        _ a: Tensor, _ b: Tensor
    ) -> Tensor {
        let result = Tensor(uninitializedShape: [m, n])
        BLAS.gemm(
            transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
            a: a.storage.base, lda: transposeA ? m : k, b: b.storage.base, ldb: transposeB ? k : n,
            c: result.storage.base, ldc: n)
        return result
    }

    /// One GEMM per batch entry, split across cores.
    static func batchedGemm(
        batch: Int, m: Int, n: Int, k: Int, transposeA: Bool, transposeB: Bool,
        a: Tensor, b: Tensor, into result: Tensor
    ) {
        let pa = UncheckedSendable(a.storage.base), pb = UncheckedSendable(b.storage.base)
        let pc = UncheckedSendable(result.storage.base)
        let work = 2 * m * n * k
        Parallel.forEachChunk(of: batch, minimumChunk: max(1, 400_000 / max(work, 1))) { _, range in
            for index in range {
                BLAS.gemm(
                    transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                    a: pa.value + index * m * k, lda: transposeA ? m : k,
                    b: pb.value + index * k * n, ldb: transposeB ? k : n,
                    c: pc.value + index * m * n, ldc: n, parallel: false)
            }
        }
    }
}

extension Tensor {
    /// `linear(gelu(self + preActivationBias), weight, bias)` in one step that keeps only `self`
    /// for the backward pass (the activation is recomputed there, from a bfloat16 copy in
    /// bfloat16 runs): the transformer MLP's middle, at half the activation memory.
    ///
    /// - Parameters:
    ///   - preActivationBias: the previous layer's bias (of the last axis's extent), added in
    ///     the activation's pass so that layer's product need not start from it; `nil` for none.
    ///   - residual: added as ``linear(weight:bias:addingTo:)`` adds it.
    public func geluLinear(
        preActivationBias: Tensor? = nil, weight: Tensor, bias: Tensor? = nil, addingTo residual: Tensor? = nil
    ) -> Tensor {
        let columns = shape[rank - 1], rows = rowCount
        if let preActivationBias {
            precondition(
                preActivationBias.shape == [columns],
                "geluLinear: pre-activation bias \(preActivationBias.describe) must have shape [\(columns)] for input \(describe).")
        }
        let minimumChunk = Parallel.minimumRows(ofWidth: columns)
        let activated = geluRows(shiftedBy: preActivationBias)
        let result = GradientMode.withoutGradient { activated.linear(weight: weight, bias: bias, addingTo: residual) }
        let n = weight.shape[0]
        let inputs = [self, weight] + [bias, residual, preActivationBias].compactMap { $0 }
        guard Tensor.recordsGradient(inputs) else { return result }
        let savedInput = SavedActivation(self)
        let inputRequiresGradient = requiresGradient
        let shiftRequiresGradient = preActivationBias?.requiresGradient ?? false
        return result.recording("geluLinear", inputs: inputs) { g in
            var gradients: [Tensor?] = [nil, nil]
            let input = savedInput.tensor
            let activated: Tensor
            var shiftGradient: Tensor?
            if inputRequiresGradient || shiftRequiresGradient {
                // The activation, its input's gradient and that gradient's column sums (the
                // pre-activation bias's gradient, one partial sum per chunk) in one pass.
                let activationGradient = Tensor.gemmResult(m: rows, n: columns, k: n, g, weight)
                activated = Tensor(uninitializedShape: input.shape)
                let dx = Tensor(uninitializedShape: input.shape)
                let chunks = Parallel.chunkCount(for: rows, minimumChunk: minimumChunk)
                let partials = shiftRequiresGradient ? Tensor.zeros([chunks, columns]) : nil
                let pointers = UncheckedSendable((
                    input.storage.base, preActivationBias?.storage.base, activationGradient.storage.base,
                    activated.storage.base, dx.storage.base, partials?.storage.base))
                Parallel.forEachChunk(of: rows, minimumChunk: minimumChunk) { chunk, range in
                    let (x, shift, dy, y, out, partial) = pointers.value
                    let offset = range.lowerBound * columns
                    ssl_gelu_forward_backward(
                        x + offset, shift, dy + offset, y + offset, out + offset, partial.map { $0 + chunk * columns },
                        Int64(range.count), Int64(columns))
                }
                if inputRequiresGradient { gradients[0] = dx }
                shiftGradient = partials?.sumBroadcast(to: [1, columns]).reshaped([columns])
            } else {
                activated = input.geluRows(shiftedBy: preActivationBias)
            }
            if weight.requiresGradient {
                gradients[1] = Tensor.gemmResult(m: n, n: columns, k: rows, transposeA: true, g, activated)
            }
            if let bias { gradients.append(bias.requiresGradient ? g.sumBroadcast(to: [n]) : nil) }
            if let residual { gradients.append(residual.requiresGradient ? g : nil) }
            if preActivationBias != nil { gradients.append(shiftGradient) }
            return gradients
        }
    }

    /// `gelu(self + shift)` for a `shift` of the last axis's extent (or none), recording no history.
    private func geluRows(shiftedBy shift: Tensor?) -> Tensor {
        let columns = shape[rank - 1]
        let activated = Tensor(uninitializedShape: shape)
        let pointers = UncheckedSendable((storage.base, shift?.storage.base, activated.storage.base))
        Parallel.forEachChunk(of: rowCount, minimumChunk: Parallel.minimumRows(ofWidth: columns)) { _, range in
            let (x, shift, y) = pointers.value
            let offset = range.lowerBound * columns
            ssl_gelu_forward(x + offset, shift, y + offset, Int64(range.count), Int64(columns))
        }
        return activated
    }
}
