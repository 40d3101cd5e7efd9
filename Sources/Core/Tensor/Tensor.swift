/// A dense, row-major array of `Float` that records the operations applied to it, so that
/// gradients can flow back through them.
///
/// Tensors are reference types: a parameter is one object that the model, the optimizer and
/// the checkpoint all see. Operations never modify their inputs; they return new tensors.
///
/// ```swift
/// let w = Tensor.randomNormal([4, 3], standardDeviation: 0.02, generator: &rng)
/// w.requiresGradient = true
/// let y = x.matmul(w).relu().sum()
/// y.backward()
/// print(w.gradient!.shape)  // [4, 3]
/// ```
public final class Tensor {
    /// The extent of each axis.
    public let shape: [Int]
    /// The buffer holding the elements, shared between reshaped views.
    public let storage: TensorStorage
    /// Whether the gradient of a loss with respect to this tensor is wanted.
    ///
    /// Set it on leaves (parameters). Results of operations on such tensors require gradients
    /// automatically while ``GradientMode`` is enabled.
    public var requiresGradient: Bool
    /// The accumulated gradient of the last backward passes, for a leaf that requires it.
    public var gradient: Tensor?
    /// The operation that produced this tensor, when gradients flow through it.
    var gradientFunction: GradientFunction?
    /// An optional name used in error messages (parameters carry their state-dict key).
    public var name: String?

    /// Wraps `storage` with `shape`; the element counts must agree.
    public init(shape: [Int], storage: TensorStorage, requiresGradient: Bool = false) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Negative extent in shape \(shape).")
        precondition(
            shape.reduce(1, *) == storage.count,
            "Shape \(shape) needs \(shape.reduce(1, *)) elements, storage has \(storage.count).")
        self.shape = shape
        self.storage = storage
        self.requiresGradient = requiresGradient
    }

    /// A tensor of `shape` with uninitialised elements, for kernels that write every element.
    public convenience init(uninitializedShape shape: [Int]) {
        self.init(shape: shape, storage: TensorStorage(uninitializedCount: shape.reduce(1, *)))
    }

    /// A tensor of `shape` whose elements all equal `value`.
    public convenience init(shape: [Int], repeating value: Float) {
        self.init(shape: shape, storage: TensorStorage(count: shape.reduce(1, *), repeating: value))
    }

    /// A tensor of `shape` holding `elements` in row-major order.
    public convenience init(shape: [Int], elements: [Float]) {
        let count = shape.reduce(1, *)
        precondition(
            elements.count == count,
            "Shape \(shape) needs \(count) elements, \(elements.count) were given.")
        self.init(uninitializedShape: shape)
        elements.withUnsafeBufferPointer { source in
            storage.base.update(from: source.baseAddress!, count: count)
        }
    }

    /// A rank-0 tensor holding `value`.
    public convenience init(scalar value: Float) {
        self.init(shape: [], repeating: value)
    }

    /// A tensor of zeros.
    public static func zeros(_ shape: [Int]) -> Tensor { Tensor(shape: shape, repeating: 0) }

    /// A tensor of ones.
    public static func ones(_ shape: [Int]) -> Tensor { Tensor(shape: shape, repeating: 1) }

    /// The number of axes.
    public var rank: Int { shape.count }
    /// The number of elements.
    public var count: Int { storage.count }
    /// The elements in row-major order.
    public var elements: [Float] { Array(storage.buffer) }
    /// The single element of a one-element tensor.
    public var scalar: Float {
        precondition(count == 1, "scalar needs a one-element tensor, \(describe) has \(count).")
        return storage.base[0]
    }
    /// A short description, `name [shape]`, for error messages.
    public var describe: String { "\(name.map { "'\($0)' " } ?? "")\(shape)" }

    /// The elements of this tensor in a new tensor that records no history.
    public func detached() -> Tensor {
        Tensor(shape: shape, storage: storage)
    }

    /// A copy with its own storage and no history.
    public func copy() -> Tensor {
        let result = Tensor(uninitializedShape: shape)
        result.storage.base.update(from: storage.base, count: count)
        return result
    }

    /// Overwrites the elements with those of `other`, which must have the same shape. Records no
    /// history: meant for parameters, optimizer state and buffers.
    public func assign(_ other: Tensor) {
        precondition(
            other.shape == shape,
            "Cannot assign \(other.describe) to \(describe): shapes differ.")
        storage.base.update(from: other.storage.base, count: count)
    }

    /// Reads the elements without copying.
    public func withElements<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(storage.buffer))
    }

    /// Writes the elements in place. Records no history.
    public func withMutableElements<R>(
        _ body: (UnsafeMutableBufferPointer<Float>) throws -> R
    ) rethrows -> R {
        try body(storage.buffer)
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let preview = elements.prefix(8).map { String($0) }.joined(separator: ", ")
        return "Tensor\(shape)[\(preview)\(count > 8 ? ", …" : "")]"
    }
}
