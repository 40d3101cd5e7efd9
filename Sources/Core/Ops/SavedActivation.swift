import CKernels

/// A tensor an operation keeps for its backward pass: the tensor itself, or in a bfloat16 run
/// (inside ``BLAS/withPrecision(_:_:)`` with ``BLAS/Precision/bfloat16``) a bfloat16 copy at
/// half the memory, rounded to nearest even as the bfloat16 products round their operands.
///
/// The copy is what makes a bfloat16 step's activations small: a product that reads a kept
/// activation in the backward pass rounds it to bfloat16 anyway, so keeping it rounded changes
/// nothing there; element-wise backward passes (attention's softmax, GELU) read values within
/// bfloat16's relative rounding error, 2⁻⁹, of the forward pass's.
struct SavedActivation {
    /// The kept tensor's shape.
    let shape: [Int]
    private let kept: Kept

    private enum Kept {
        case float32(Tensor)
        /// Two bfloat16 values in each float32 slot of the storage.
        case bfloat16(TensorStorage, count: Int)
    }

    /// Keeps `tensor`, as bfloat16 when the current precision is ``BLAS/Precision/bfloat16``.
    init(_ tensor: Tensor) {
        shape = tensor.shape
        guard BLAS.precision == .bfloat16 else {
            kept = .float32(tensor)
            return
        }
        let count = tensor.count
        let halves = TensorStorage(uninitializedCount: (count + 1) / 2)
        let pointers = UncheckedSendable((tensor.storage.base, Self.words(halves)))
        Parallel.forEachChunk(of: count, minimumChunk: 1 << 16) { _, range in
            let (source, destination) = pointers.value
            ssl_round_to_bf16(source + range.lowerBound, destination + range.lowerBound, Int64(range.count))
        }
        kept = .bfloat16(halves, count: count)
    }

    /// The kept values as a float32 tensor (a new one when they were kept as bfloat16).
    var tensor: Tensor {
        switch kept {
        case .float32(let tensor):
            return tensor
        case .bfloat16(let halves, let count):
            let widened = Tensor(uninitializedShape: shape)
            let pointers = UncheckedSendable((Self.words(halves), widened.storage.base))
            Parallel.forEachChunk(of: count, minimumChunk: 1 << 16) { _, range in
                let (source, destination) = pointers.value
                ssl_widen_bf16(source + range.lowerBound, destination + range.lowerBound, Int64(range.count))
            }
            return widened
        }
    }

    private static func words(_ storage: TensorStorage) -> UnsafeMutablePointer<UInt16> {
        UnsafeMutableRawPointer(storage.base).assumingMemoryBound(to: UInt16.self)
    }
}
