import CKernels

extension Tensor {
    /// Σ x², accumulated in double precision (a statistic: no gradient is recorded).
    public var sumOfSquares: Double {
        ssl_sum_of_squares(storage.base, Int64(storage.count))
    }

    /// The sum of all elements, as a rank-0 tensor.
    public func sum() -> Tensor {
        var total: Double = 0
        for value in storage.buffer { total += Double(value) }
        let sourceShape = shape
        return Tensor(scalar: Float(total)).recording("sum", inputs: [self]) { g in
            [Tensor(shape: sourceShape, repeating: g.scalar)]
        }
    }

    /// The mean of all elements, as a rank-0 tensor.
    public func mean() -> Tensor { sum() / Float(count) }

    /// The sum over `axes`.
    ///
    /// - Parameter keepingDimensions: keep the summed axes with extent 1, so that the result
    ///   broadcasts against this tensor.
    public func sum(axes: [Int], keepingDimensions: Bool = false) -> Tensor {
        let resolved = Set(axes.map { ShapeRules.normalizedAxis($0, rank: rank, operation: "sum") })
        let kept = shape.indices.map { resolved.contains($0) ? 1 : shape[$0] }
        let summed = GradientMode.withoutGradient { sumBroadcast(to: kept) }
        let finalShape = keepingDimensions ? kept : shape.indices.filter { !resolved.contains($0) }.map { shape[$0] }
        let result = Tensor(shape: finalShape, storage: summed.storage)
        let sourceShape = shape
        return result.recording("sum(axes:)", inputs: [self]) { g in
            [g.reshaped(kept).broadcasting(.add, Tensor.zeros(sourceShape))]
        }
    }

    /// The mean over `axes`.
    public func mean(axes: [Int], keepingDimensions: Bool = false) -> Tensor {
        let resolved = axes.map { ShapeRules.normalizedAxis($0, rank: rank, operation: "mean") }
        let size = Set(resolved).reduce(1) { $0 * shape[$1] }
        return sum(axes: resolved, keepingDimensions: keepingDimensions) / Float(size)
    }
}
