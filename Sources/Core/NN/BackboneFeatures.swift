/// The two token sequences tasks read from a backbone pass.
public struct BackboneFeatures {
    /// The raw output of the last block, `[batch, classSlots + patches, dim]`.
    public var lastBlock: Tensor
    /// The tokens after the final norm; equal to `lastBlock` when the backbone has none.
    public var output: Tensor
    /// The number of leading class-token rows (0 or 1).
    public var classSlots: Int
    /// The patch grid of the input.
    public var gridHeight: Int, gridWidth: Int

    /// The patch rows of ``lastBlock``, `[batch, patches, dim]`.
    public var lastBlockPatches: Tensor {
        classSlots == 0 ? lastBlock : lastBlock.sliced(classSlots..<lastBlock.shape[1], axis: 1)
    }

    /// The patch rows of ``output``, `[batch, patches, dim]`.
    public var outputPatches: Tensor {
        classSlots == 0 ? output : output.sliced(classSlots..<output.shape[1], axis: 1)
    }

    /// The class token of ``output``, `[batch, dim]`, when the backbone has one.
    public var classToken: Tensor? {
        guard classSlots > 0 else { return nil }
        return output.sliced(0..<1, axis: 1).reshaped([output.shape[0], output.shape[2]])
    }

    /// The samples `range` of every sequence.
    public func samples(_ range: Range<Int>) -> BackboneFeatures {
        let last = lastBlock.sliced(range, axis: 0)
        let out = output === lastBlock ? last : output.sliced(range, axis: 0)
        return BackboneFeatures(
            lastBlock: last, output: out, classSlots: classSlots, gridHeight: gridHeight, gridWidth: gridWidth)
    }
}
