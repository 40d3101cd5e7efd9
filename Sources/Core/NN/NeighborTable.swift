/// The 8 neighbours of every cell of a patch grid in a 3×3 window that wraps around the grid's
/// borders (a torus), each row listed in ascending flat index as the original code does.
public struct NeighborTable: Sendable {
    public let height: Int, width: Int
    /// `[cells][8]` flat neighbour indices.
    public let neighbors: [[Int]]

    public init(height: Int, width: Int) {
        self.height = height
        self.width = width
        neighbors = (0..<(height * width)).map { cell in
            let row = cell / width, column = cell % width
            var result: [Int] = []
            for dr in -1...1 {
                for dc in -1...1 where dr != 0 || dc != 0 {
                    result.append(((row + dr + height) % height) * width + (column + dc + width) % width)
                }
            }
            return result.sorted()
        }
    }

    /// The cosine similarity of every token of `patches` (`[batch, cells, dim]`) to each of its
    /// 8 neighbours: `[batch, cells, 8]`, in the table's neighbour order.
    public func similarities(_ patches: Tensor) -> Tensor {
        let batch = patches.shape[0], cells = patches.shape[1], dimension = patches.shape[2]
        precondition(cells == height * width, "NeighborTable \(height)×\(width) applied to \(cells) patches.")
        let normalized = GradientMode.withoutGradient { patches.l2Normalized() }
        let result = Tensor(uninitializedShape: [batch, cells, 8])
        let x = normalized.storage.base, s = result.storage.base
        for b in 0..<batch {
            for cell in 0..<cells {
                let anchor = x + (b * cells + cell) * dimension
                for (slot, neighbor) in neighbors[cell].enumerated() {
                    let other = x + (b * cells + neighbor) * dimension
                    var dot: Float = 0
                    for d in 0..<dimension { dot += anchor[d] * other[d] }
                    s[(b * cells + cell) * 8 + slot] = dot
                }
            }
        }
        return result
    }

    /// For each token of `patches` (`[batch, cells, dim]`), the flat row indices (into
    /// `patches` viewed as `[batch·cells, dim]`) of its `count` neighbours with the highest
    /// cosine similarity, most similar first.
    public func mostSimilarNeighbors(_ patches: Tensor, count: Int) -> [Int] {
        let cells = patches.shape[1]
        let slots = similarities(patches).topK(count).indices
        return slots.enumerated().map { position, slot in
            let row = position / count
            return (row / cells) * cells + neighbors[row % cells][slot]
        }
    }
}
