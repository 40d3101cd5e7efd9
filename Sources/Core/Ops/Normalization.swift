import CKernels

extension Tensor {
    /// Layer normalisation over the last axis, with optional affine `weight` and `bias` of the
    /// last axis's extent.
    public func layerNorm(weight: Tensor?, bias: Tensor?, epsilon: Float) -> Tensor {
        let (result, statistics) = layerNormForward(weight: weight, bias: bias, epsilon: epsilon)
        let inputs = [self] + [weight, bias].compactMap { $0 }
        return result.recording("layerNorm", inputs: inputs) { g in
            self.layerNormBackward(g, weight: weight, hasBias: bias != nil, statistics: statistics)
        }
    }

    /// `linear(layerNorm(self))` in one step that keeps only `self` and the row statistics for
    /// the backward pass (the normalised rows are recomputed there): a transformer block's
    /// `norm1 → qkv` and `norm2 → fc1`, at a fraction of the activation memory.
    public func layerNormLinear(
        normWeight: Tensor, normBias: Tensor, epsilon: Float, weight: Tensor, bias: Tensor?
    ) -> Tensor {
        let (normalized, statistics) = layerNormForward(weight: normWeight, bias: normBias, epsilon: epsilon)
        let result = GradientMode.withoutGradient { normalized.linear(weight: weight, bias: bias) }
        let m = rowCount, k = weight.shape[1], n = weight.shape[0]
        let inputs = [self, normWeight, normBias, weight] + (bias.map { [$0] } ?? [])
        return result.recording("layerNormLinear", inputs: inputs) { g in
            let (normalized, _) = self.layerNormForward(weight: normWeight, bias: normBias, epsilon: epsilon)
            let normalizedGradient = Tensor.gemmResult(m: m, n: k, k: n, g, weight).reshaped(self.shape)
            var gradients = self.layerNormBackward(normalizedGradient, weight: normWeight, hasBias: true, statistics: statistics)
            gradients.append(weight.requiresGradient ? Tensor.gemmResult(m: n, n: k, k: m, transposeA: true, g, normalized) : nil)
            if let bias { gradients.append(bias.requiresGradient ? g.sumBroadcast(to: [n]) : nil) }
            return gradients
        }
    }

    /// The per-row mean and reciprocal standard deviation of a layer normalisation.
    struct LayerNormStatistics {
        var mean: Tensor
        var reciprocalStd: Tensor
    }

    /// Normalises the rows without recording history.
    func layerNormForward(weight: Tensor?, bias: Tensor?, epsilon: Float) -> (Tensor, LayerNormStatistics) {
        let columns = shape[rank - 1], rows = rowCount
        for parameter in [weight, bias].compactMap({ $0 }) {
            precondition(
                parameter.shape == [columns],
                "layerNorm: parameter \(parameter.describe) must have shape [\(columns)] for input \(describe).")
        }
        let result = Tensor(uninitializedShape: shape)
        let statistics = LayerNormStatistics(mean: Tensor(uninitializedShape: [rows]), reciprocalStd: Tensor(uninitializedShape: [rows]))
        let p = UncheckedSendable((
            storage.base, result.storage.base, statistics.mean.storage.base, statistics.reciprocalStd.storage.base,
            weight?.storage.base, bias?.storage.base))
        Parallel.forEachChunk(of: rows, minimumChunk: Parallel.minimumRows(ofWidth: columns)) { _, range in
            let (x, y, mu, rstd, w, b) = p.value
            let start = range.lowerBound
            ssl_layer_norm_forward(
                x + start * columns, w, b, y + start * columns, mu + start, rstd + start,
                Int64(range.count), Int64(columns), epsilon)
        }
        return (result, statistics)
    }

    /// The gradients of a layer normalisation of `self` for the output gradient `g`: the input,
    /// then the weight and bias when present.
    func layerNormBackward(_ g: Tensor, weight: Tensor?, hasBias: Bool, statistics: LayerNormStatistics) -> [Tensor?] {
        let columns = shape[rank - 1], rows = rowCount
        let dx = requiresGradient ? Tensor(uninitializedShape: shape) : nil
        let minimumChunk = Parallel.minimumRows(ofWidth: columns)
        let chunks = Parallel.chunkCount(for: rows, minimumChunk: minimumChunk)
        // One partial sum of the affine gradients per chunk, added up afterwards.
        let partials = Tensor.zeros([chunks, 2, columns])
        let q = UncheckedSendable((
            storage.base, weight?.storage.base, statistics.mean.storage.base, statistics.reciprocalStd.storage.base,
            g.storage.base, dx?.storage.base, partials.storage.base))
        Parallel.forEachChunk(of: rows, minimumChunk: minimumChunk) { chunk, range in
            let (x, w, mu, rstd, dy, dx, partial) = q.value
            let start = range.lowerBound
            ssl_layer_norm_backward(
                x + start * columns, w, mu + start, rstd + start, dy + start * columns,
                dx.map { $0 + start * columns }, partial + chunk * 2 * columns,
                partial + (chunk * 2 + 1) * columns, Int64(range.count), Int64(columns))
        }
        var gradients: [Tensor?] = [dx]
        if weight != nil || hasBias {
            let totals = partials.sumBroadcast(to: [1, 2, columns])
            if weight != nil { gradients.append(totals.sliced(0..<1, axis: 1).reshaped([columns])) }
            if hasBias { gradients.append(totals.sliced(1..<2, axis: 1).reshaped([columns])) }
        }
        return gradients
    }

    /// Each row (last axis) divided by its Euclidean norm, clamped below at `epsilon`.
    public func l2Normalized(epsilon: Float = 1e-12) -> Tensor {
        let columns = shape[rank - 1], rows = rowCount
        let result = Tensor(uninitializedShape: shape)
        let norms = Tensor(uninitializedShape: [rows])
        let x = storage.base, y = result.storage.base, n = norms.storage.base
        for row in 0..<rows {
            let line = x + row * columns
            var squares: Float = 0
            for c in 0..<columns { squares += line[c] * line[c] }
            let norm = max(squares.squareRoot(), epsilon)
            n[row] = norm
            for c in 0..<columns { y[row * columns + c] = line[c] / norm }
        }
        return result.recording("l2Normalized", inputs: [self]) { g in
            let dx = Tensor(uninitializedShape: self.shape)
            let dy = g.storage.base, out = dx.storage.base, y = result.storage.base, n = norms.storage.base
            for row in 0..<rows {
                let norm = n[row]
                let unclamped = norm > epsilon
                var dot: Float = 0
                if unclamped { for c in 0..<columns { dot += y[row * columns + c] * dy[row * columns + c] } }
                for c in 0..<columns {
                    let i = row * columns + c
                    out[i] = (dy[i] - y[i] * dot) / norm
                }
            }
            return [dx]
        }
    }

    /// The weight-normalised matrix `magnitude[k] · direction[k] / ‖direction[k]‖` (norm over
    /// each row), as PyTorch's `weight_norm(dim=0)` builds it.
    ///
    /// - Parameters:
    ///   - direction: `v`, shape `[out, in]`.
    ///   - magnitude: `g`, shape `[out, 1]`.
    public static func weightNormalized(direction: Tensor, magnitude: Tensor) -> Tensor {
        precondition(
            direction.rank == 2 && magnitude.shape == [direction.shape[0], 1],
            "weightNormalized: magnitude \(magnitude.describe) must be [\(direction.shape.first ?? 0), 1] "
                + "for direction \(direction.describe).")
        let rows = direction.shape[0], columns = direction.shape[1]
        let result = Tensor(uninitializedShape: direction.shape)
        let norms = Tensor(uninitializedShape: [rows])
        let v = direction.storage.base, g = magnitude.storage.base, w = result.storage.base
        let n = norms.storage.base
        let p = UncheckedSendable((v, g, w, n))
        Parallel.forEachChunk(of: rows, minimumChunk: 256) { _, range in
            let (v, g, w, n) = p.value
            for row in range {
                let line = v + row * columns
                var squares: Float = 0
                for c in 0..<columns { squares += line[c] * line[c] }
                let norm = squares.squareRoot()
                n[row] = norm
                let factor = g[row] / norm
                for c in 0..<columns { w[row * columns + c] = line[c] * factor }
            }
        }
        return result.recording("weightNormalized", inputs: [direction, magnitude]) { gradient in
            let dv = Tensor(uninitializedShape: direction.shape)
            let dg = Tensor(uninitializedShape: magnitude.shape)
            let q = UncheckedSendable((
                gradient.storage.base, dv.storage.base, dg.storage.base, direction.storage.base,
                magnitude.storage.base, norms.storage.base))
            Parallel.forEachChunk(of: rows, minimumChunk: 256) { _, range in
                let (dw, dvBase, dgBase, v, g, n) = q.value
                for row in range {
                    let line = v + row * columns, upstream = dw + row * columns
                    let norm = n[row]
                    var dot: Float = 0
                    for c in 0..<columns { dot += line[c] * upstream[c] }
                    // ŵ = v/‖v‖: dg = ŵ·dW, dv = g/‖v‖ (dW − ŵ (ŵ·dW)).
                    let projection = dot / norm
                    dgBase[row] = projection
                    let factor = g[row] / norm
                    for c in 0..<columns {
                        dvBase[row * columns + c] = factor * (upstream[c] - line[c] / norm * projection)
                    }
                }
            }
            return [direction.requiresGradient ? dv : nil, magnitude.requiresGradient ? dg : nil]
        }
    }

    /// Batch normalisation of a `[batch, features]` matrix with the batch statistics (training)
    /// or the running statistics (evaluation), as PyTorch's `BatchNorm1d`.
    ///
    /// In training, the running statistics are updated in place with `momentum`, using the
    /// unbiased batch variance, while normalisation uses the biased one. With a `collective`
    /// of several processes the statistics, and the sums the backward pass needs, cover the
    /// batches of all processes (synchronised batch norm, as `SyncBatchNorm`).
    public func batchNorm(
        weight: Tensor?, bias: Tensor?, runningMean: Tensor, runningVariance: Tensor,
        training: Bool, momentum: Float, epsilon: Float, collective: Collective? = nil
    ) -> Tensor {
        precondition(rank == 2, "batchNorm expects [batch, features], got \(describe).")
        let processes = training ? (collective?.worldSize ?? 1) : 1
        let total = shape[0] * processes
        precondition(
            !training || total > 1,
            "batchNorm in training needs more than one sample per batch, got \(describe).")
        /// Column sums over every process's rows.
        func globalSum(_ tensor: Tensor) -> Tensor {
            let sums = tensor.sum(axes: [0])
            if processes > 1 { collective!.allReduceSum(sums) }
            return sums
        }
        let mean: Tensor, variance: Tensor
        if training {
            mean = GradientMode.withoutGradient { globalSum(self) / Float(total) }
            let centered = GradientMode.withoutGradient { globalSum((self - mean).squared()) }
            variance = centered / Float(total)
            GradientMode.withoutGradient {
                runningMean.assign(runningMean * (1 - momentum) + mean * momentum)
                runningVariance.assign(
                    runningVariance * (1 - momentum) + centered * (momentum / Float(total - 1)))
            }
        } else {
            mean = runningMean
            variance = runningVariance
        }
        let reciprocalStd = GradientMode.withoutGradient { 1 / (variance + epsilon).squareRoot() }
        let normalized = GradientMode.withoutGradient { (self - mean) * reciprocalStd }
        var result = normalized
        if let weight, let bias { result = GradientMode.withoutGradient { normalized * weight + bias } }
        let inputs = [self] + [weight, bias].compactMap { $0 }
        return result.detached().recording("batchNorm", inputs: inputs) { g in
            let scaled = weight.map { g * $0 } ?? g
            let dx: Tensor
            if training {
                // dx = rstd (ĝ − mean(ĝ) − x̂ mean(ĝ x̂)), means over the (global) batch.
                let meanG = globalSum(scaled) / Float(total)
                let meanGX = globalSum(scaled * normalized) / Float(total)
                dx = (scaled - meanG - normalized * meanGX) * reciprocalStd
            } else {
                dx = scaled * reciprocalStd
            }
            var gradients: [Tensor?] = [dx]
            if weight != nil { gradients.append((g * normalized).sum(axes: [0])) }
            if bias != nil { gradients.append(g.sum(axes: [0])) }
            return gradients
        }
    }
}

extension Tensor {
    /// `x · Wᵀ` for the weight-normalised matrix `W[k] = magnitude[k] · direction[k] / ‖direction[k]‖`
    /// without forming `W`: one GEMM, then each output column scaled by `g_k / ‖v_k‖`.
    ///
    /// The backward pass uses `H = dyᵀ·x`: `dv_k = s_k H_k − s_k (H_k·v_k) v_k / ‖v_k‖²` and
    /// `dg_k = H_k·v_k / ‖v_k‖`, with `s_k = g_k / ‖v_k‖`.
    ///
    /// - Parameters:
    ///   - direction: `v`, shape `[out, in]`.
    ///   - magnitude: `g`, shape `[out, 1]`.
    public func weightNormalizedLinear(direction: Tensor, magnitude: Tensor) -> Tensor {
        precondition(
            direction.rank == 2 && magnitude.shape == [direction.shape[0], 1] && rank >= 1
                && shape[rank - 1] == direction.shape[1],
            "weightNormalizedLinear: input \(describe), direction \(direction.describe), magnitude \(magnitude.describe) "
                + "must be [..., in], [out, in] and [out, 1].")
        let outputs = direction.shape[0], inputs = direction.shape[1], rows = rowCount
        let norms = Tensor(uninitializedShape: [outputs]), scales = Tensor(uninitializedShape: [outputs])
        do {
            let pointers = UncheckedSendable((direction.storage.base, magnitude.storage.base, norms.storage.base, scales.storage.base))
            Parallel.forEachChunk(of: outputs, minimumChunk: Parallel.minimumRows(ofWidth: inputs)) { _, range in
                let (v, g, n, s) = pointers.value
                let first = range.lowerBound
                ssl_row_dot_products(v + first * inputs, v + first * inputs, n + first, Int64(range.count), Int64(inputs))
                for k in range {
                    n[k] = n[k].squareRoot()
                    s[k] = g[k] / n[k]
                }
            }
        }
        let result = Tensor(uninitializedShape: Array(shape.dropLast()) + [outputs])
        BLAS.gemm(
            transposeB: true, m: rows, n: outputs, k: inputs, a: storage.base, lda: inputs,
            b: direction.storage.base, ldb: inputs, c: result.storage.base, ldc: outputs)
        result.scaleColumns(by: scales)
        return result.recording("weightNormalizedLinear", inputs: [self, direction, magnitude]) { gradient in
            let v = direction.storage.base, n = norms.storage.base, s = scales.storage.base
            var gradients: [Tensor?] = [nil, nil, nil]
            if self.requiresGradient {
                // dx = (dy ⊙ s) · v, scaling whichever of dy and v is smaller.
                if rows <= inputs {
                    let scaled = gradient.copy()
                    scaled.scaleColumns(by: scales)
                    gradients[0] = Tensor.gemmResult(m: rows, n: inputs, k: outputs, scaled, direction).reshaped(self.shape)
                } else {
                    let weight = direction.copy()
                    weight.scaleRows(by: scales)
                    gradients[0] = Tensor.gemmResult(m: rows, n: inputs, k: outputs, gradient, weight).reshaped(self.shape)
                }
            }
            if direction.requiresGradient || magnitude.requiresGradient {
                // h = dyᵀ · x ([out, in]) is turned into dv in place: one out × in matrix fewer.
                let h = Tensor.gemmResult(m: outputs, n: inputs, k: rows, transposeA: true, gradient, self)
                let dg = Tensor(uninitializedShape: magnitude.shape)
                let pointers = UncheckedSendable((h.storage.base, dg.storage.base, v, n, s))
                Parallel.forEachChunk(of: outputs, minimumChunk: 256) { _, range in
                    let (h, dg, v, n, s) = pointers.value
                    let first = range.lowerBound
                    ssl_row_dot_products(h + first * inputs, v + first * inputs, dg + first, Int64(range.count), Int64(inputs))
                    for k in range {
                        let row = k * inputs
                        let dot = dg[k]
                        dg[k] = dot / n[k]
                        let correction = s[k] * dot / (n[k] * n[k])
                        for d in 0..<inputs { h[row + d] = s[k] * h[row + d] - correction * v[row + d] }
                    }
                }
                gradients[1] = direction.requiresGradient ? h : nil
                gradients[2] = magnitude.requiresGradient ? dg : nil
            }
            return gradients
        }
    }

    /// Multiplies each column of this matrix view by `factors[column]`, in place.
    func scaleColumns(by factors: Tensor) {
        let columns = factors.count, rows = count / columns
        let pointers = UncheckedSendable((storage.base, factors.storage.base))
        Parallel.forEachChunk(of: rows, minimumChunk: Parallel.minimumRows(ofWidth: columns)) { _, range in
            let (x, f) = pointers.value
            for row in range {
                let line = x + row * columns
                for column in 0..<columns { line[column] *= f[column] }
            }
        }
    }

    /// Multiplies each row of this matrix view by `factors[row]`, in place.
    func scaleRows(by factors: Tensor) {
        let rows = factors.count, columns = count / rows
        let x = storage.base, f = factors.storage.base
        for row in 0..<rows {
            let line = x + row * columns, factor = f[row]
            for column in 0..<columns { line[column] *= factor }
        }
    }
}
