import CKernels

/// The element-wise binary operations, with NumPy broadcasting.
enum BinaryOperation {
    case add, subtract, multiply, divide

    var symbol: String {
        switch self {
        case .add: "+"
        case .subtract: "-"
        case .multiply: "*"
        case .divide: "/"
        }
    }

    /// Applies the operation to `count` elements read with the given strides.
    @inline(__always)
    func apply(
        _ a: UnsafePointer<Float>, _ strideA: Int, _ b: UnsafePointer<Float>, _ strideB: Int,
        _ out: UnsafeMutablePointer<Float>, _ count: Int
    ) {
        switch (self, strideA, strideB) {
        case (.add, 1, 1): for i in 0..<count { out[i] = a[i] + b[i] }
        case (.add, 1, 0): let y = b[0]; for i in 0..<count { out[i] = a[i] + y }
        case (.subtract, 1, 1): for i in 0..<count { out[i] = a[i] - b[i] }
        case (.subtract, 1, 0): let y = b[0]; for i in 0..<count { out[i] = a[i] - y }
        case (.multiply, 1, 1): for i in 0..<count { out[i] = a[i] * b[i] }
        case (.multiply, 1, 0): let y = b[0]; for i in 0..<count { out[i] = a[i] * y }
        case (.divide, 1, 1): for i in 0..<count { out[i] = a[i] / b[i] }
        case (.divide, 1, 0): let y = b[0]; for i in 0..<count { out[i] = a[i] / y }
        case (.add, _, _): for i in 0..<count { out[i] = a[i * strideA] + b[i * strideB] }
        case (.subtract, _, _): for i in 0..<count { out[i] = a[i * strideA] - b[i * strideB] }
        case (.multiply, _, _): for i in 0..<count { out[i] = a[i * strideA] * b[i * strideB] }
        case (.divide, _, _): for i in 0..<count { out[i] = a[i * strideA] / b[i * strideB] }
        }
    }
}

extension Tensor {
    /// Applies `operation` element-wise with broadcasting, without recording history.
    func broadcasting(_ operation: BinaryOperation, _ other: Tensor) -> Tensor {
        guard let shape = ShapeRules.broadcast(self.shape, other.shape) else {
            preconditionFailure(
                "Cannot broadcast \(describe) \(operation.symbol) \(other.describe): "
                    + "each axis must match or be 1.")
        }
        let result = Tensor(uninitializedShape: shape)
        let out = result.storage.base, a = storage.base, b = other.storage.base
        if self.shape == other.shape || other.count == 1 {
            let strideB = other.count == 1 ? 0 : 1
            Parallel.forEachChunk(of: count, minimumChunk: 1 << 18) { _, range in
                operation.apply(
                    a + range.lowerBound, 1, b + range.lowerBound * strideB, strideB,
                    out + range.lowerBound, range.count)
            }
            return result
        }
        let loop = StridedLoop(
            shape: shape,
            strides: [
                ShapeRules.contiguousStrides(shape),
                ShapeRules.broadcastStrides(self.shape, to: shape),
                ShapeRules.broadcastStrides(other.shape, to: shape),
            ])
        let inner = loop.innerExtent, strideA = loop.innerStride(1), strideB = loop.innerStride(2)
        loop.forEachRow { outOffset, aOffset, bOffset in
            operation.apply(a + aOffset, strideA, b + bOffset, strideB, out + outOffset, inner)
        }
        return result
    }

    /// Sums this tensor over the axes along which it was broadcast to reach its shape from
    /// `target`: the gradient of a broadcast.
    public func sumBroadcast(to target: [Int]) -> Tensor {
        if shape == target { return self }
        let result = Tensor.zeros(target)
        let out = result.storage.base, input = storage.base
        let trailing = target.reduce(1, *)
        if ShapeRules.isTrailingBroadcast(target, of: shape) {
            // A bias-like operand: sum whole rows, split across cores with one partial per chunk.
            let rows = count / max(trailing, 1)
            let chunks = Parallel.chunkCount(for: rows, minimumChunk: max(1, 32_768 / max(trailing, 1)))
            let partials = chunks > 1 ? Tensor.zeros([chunks, trailing]) : result
            let pointers = UncheckedSendable((input, partials.storage.base))
            Parallel.forEachChunk(of: rows, minimumChunk: max(1, 32_768 / max(trailing, 1))) { chunk, range in
                let (input, sums) = pointers.value
                ssl_add_column_sums(
                    input + range.lowerBound * trailing, sums + chunk * trailing, Int64(range.count), Int64(trailing))
            }
            if chunks > 1 { ssl_add_column_sums(partials.storage.base, out, Int64(chunks), Int64(trailing)) }
            return result
        }
        let loop = StridedLoop(
            shape: shape,
            strides: [
                ShapeRules.broadcastStrides(target, to: shape),
                ShapeRules.contiguousStrides(shape),
            ])
        let inner = loop.innerExtent, outStride = loop.innerStride(0), inStride = loop.innerStride(1)
        loop.forEachRow { outOffset, inOffset, _ in
            let o = out + outOffset, x = input + inOffset
            if outStride == 0 {
                var total: Float = 0
                for i in 0..<inner { total += x[i * inStride] }
                o[0] += total
            } else {
                for i in 0..<inner { o[i * outStride] += x[i * inStride] }
            }
        }
        return result
    }

    /// Adds `other` (same shape) into this tensor's storage. Records no history.
    public func addInPlace(_ other: Tensor, scale: Float = 1) {
        precondition(other.shape == shape, "addInPlace: \(other.describe) into \(describe).")
        let out = storage.base, x = other.storage.base
        Parallel.forEachChunk(of: count, minimumChunk: 1 << 18) { _, range in
            for i in range { out[i] += scale * x[i] }
        }
    }

    /// Multiplies this tensor's elements by `factor` in place. Records no history.
    public func scaleInPlace(by factor: Float) {
        let out = storage.base
        for i in 0..<count { out[i] *= factor }
    }

    /// The element-wise sum with `other` (same shape), recording no history.
    func adding(_ other: Tensor) -> Tensor { broadcasting(.add, other) }

    // MARK: Differentiable arithmetic

    public static func + (lhs: Tensor, rhs: Tensor) -> Tensor {
        let leftShape = lhs.shape, rightShape = rhs.shape
        return lhs.broadcasting(.add, rhs).recording("add", inputs: [lhs, rhs]) { g in
            [g.sumBroadcast(to: leftShape), g.sumBroadcast(to: rightShape)]
        }
    }

    public static func - (lhs: Tensor, rhs: Tensor) -> Tensor {
        let leftShape = lhs.shape, rightShape = rhs.shape, rightNeedsGradient = rhs.requiresGradient
        return lhs.broadcasting(.subtract, rhs).recording("subtract", inputs: [lhs, rhs]) { g in
            [g.sumBroadcast(to: leftShape), rightNeedsGradient ? (-g).sumBroadcast(to: rightShape) : nil]
        }
    }

    public static func * (lhs: Tensor, rhs: Tensor) -> Tensor {
        // Keep each operand only if the other one's gradient needs it, so that e.g. a constant
        // mask does not hold on to the activation it scales.
        let savedLeft = rhs.requiresGradient ? lhs : nil, savedRight = lhs.requiresGradient ? rhs : nil
        let leftShape = lhs.shape, rightShape = rhs.shape
        return lhs.broadcasting(.multiply, rhs).recording("multiply", inputs: [lhs, rhs]) { g in
            [
                savedRight.map { (g * $0).sumBroadcast(to: leftShape) },
                savedLeft.map { (g * $0).sumBroadcast(to: rightShape) },
            ]
        }
    }

    public static func / (lhs: Tensor, rhs: Tensor) -> Tensor {
        let savedLeft = rhs.requiresGradient ? lhs : nil, leftNeedsGradient = lhs.requiresGradient
        let leftShape = lhs.shape, rightShape = rhs.shape
        return lhs.broadcasting(.divide, rhs).recording("divide", inputs: [lhs, rhs]) { g in
            [
                leftNeedsGradient ? (g / rhs).sumBroadcast(to: leftShape) : nil,
                savedLeft.map { (-(g * $0) / (rhs * rhs)).sumBroadcast(to: rightShape) },
            ]
        }
    }

    public static prefix func - (operand: Tensor) -> Tensor { operand * -1 }

    public static func + (lhs: Tensor, rhs: Float) -> Tensor { lhs + Tensor(scalar: rhs) }
    public static func - (lhs: Tensor, rhs: Float) -> Tensor { lhs - Tensor(scalar: rhs) }
    public static func * (lhs: Tensor, rhs: Float) -> Tensor { lhs * Tensor(scalar: rhs) }
    public static func / (lhs: Tensor, rhs: Float) -> Tensor { lhs / Tensor(scalar: rhs) }
    public static func + (lhs: Float, rhs: Tensor) -> Tensor { Tensor(scalar: lhs) + rhs }
    public static func - (lhs: Float, rhs: Tensor) -> Tensor { Tensor(scalar: lhs) - rhs }
    public static func * (lhs: Float, rhs: Tensor) -> Tensor { Tensor(scalar: lhs) * rhs }
    public static func / (lhs: Float, rhs: Tensor) -> Tensor { Tensor(scalar: lhs) / rhs }
}
