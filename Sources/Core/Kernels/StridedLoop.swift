/// Walks up to three operands of one logical shape, each with its own element strides (0 on
/// broadcast axes), one innermost row at a time.
///
/// Adjacent axes that are contiguous in every operand are merged first, so a bias added to a
/// token matrix, or a sum over the leading axis, becomes a two-level loop with a contiguous
/// inner row.
struct StridedLoop {
    /// The merged extents, outermost first.
    let extents: [Int]
    /// The merged strides of each operand, one array per operand.
    let strides: [[Int]]

    init(shape: [Int], strides operandStrides: [[Int]]) {
        var extents: [Int] = []
        var merged: [[Int]] = operandStrides.map { _ in [] }
        for axis in shape.indices where shape[axis] != 1 {
            if let last = extents.indices.last,
                operandStrides.indices.allSatisfy({
                    merged[$0][last] == operandStrides[$0][axis] * shape[axis]
                })
            {
                extents[last] *= shape[axis]
                for operand in operandStrides.indices { merged[operand][last] = operandStrides[operand][axis] }
            } else {
                extents.append(shape[axis])
                for operand in operandStrides.indices { merged[operand].append(operandStrides[operand][axis]) }
            }
        }
        if extents.isEmpty {
            extents = [1]
            merged = operandStrides.map { _ in [0] }
        }
        self.extents = extents
        self.strides = merged
    }

    /// The extent of the innermost row.
    var innerExtent: Int { extents[extents.count - 1] }
    /// Each operand's stride along the innermost row.
    func innerStride(_ operand: Int) -> Int { strides[operand][extents.count - 1] }
    /// The number of rows.
    var rowCount: Int { extents.dropLast().reduce(1, *) }

    /// Calls `body` with the starting offset of each operand (up to three) for every row.
    func forEachRow(_ body: (_ first: Int, _ second: Int, _ third: Int) -> Void) {
        let outerRank = extents.count - 1
        let operandCount = strides.count
        func stride(_ operand: Int, _ axis: Int) -> Int {
            operand < operandCount ? strides[operand][axis] : 0
        }
        if outerRank == 0 {
            body(0, 0, 0)
            return
        }
        var index = [Int](repeating: 0, count: outerRank)
        var offsets = (0, 0, 0)
        for _ in 0..<rowCount {
            body(offsets.0, offsets.1, offsets.2)
            var axis = outerRank - 1
            while axis >= 0 {
                index[axis] += 1
                offsets.0 += stride(0, axis)
                offsets.1 += stride(1, axis)
                offsets.2 += stride(2, axis)
                if index[axis] < extents[axis] { break }
                offsets.0 -= stride(0, axis) * extents[axis]
                offsets.1 -= stride(1, axis) * extents[axis]
                offsets.2 -= stride(2, axis) * extents[axis]
                index[axis] = 0
                axis -= 1
            }
        }
    }
}

/// Shape arithmetic shared by the operations.
enum ShapeRules {
    /// Row-major element strides of `shape`.
    static func contiguousStrides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var running = 1
        for axis in shape.indices.reversed() {
            strides[axis] = running
            running *= shape[axis]
        }
        return strides
    }

    /// The NumPy broadcast of two shapes, or `nil` when they are incompatible.
    static func broadcast(_ first: [Int], _ second: [Int]) -> [Int]? {
        let rank = max(first.count, second.count)
        let a = [Int](repeating: 1, count: rank - first.count) + first
        let b = [Int](repeating: 1, count: rank - second.count) + second
        var result: [Int] = []
        for (x, y) in zip(a, b) {
            if x == y || y == 1 {
                result.append(x)
            } else if x == 1 {
                result.append(y)
            } else {
                return nil
            }
        }
        return result
    }

    /// Strides for reading a tensor of `shape` as if it had the (broadcast) shape `target`:
    /// 0 on axes where it has extent 1 or is missing.
    static func broadcastStrides(_ shape: [Int], to target: [Int]) -> [Int] {
        let padded = [Int](repeating: 1, count: target.count - shape.count) + shape
        let strides = contiguousStrides(padded)
        return zip(padded, strides).map { extent, stride in extent == 1 ? 0 : stride }
    }

    /// Whether `target` (the shape of a broadcast operand) equals the trailing axes of `shape`
    /// after dropping leading extents of 1, so that `shape` is whole copies of it.
    static func isTrailingBroadcast(_ target: [Int], of shape: [Int]) -> Bool {
        let trimmed = target.drop { $0 == 1 }
        return trimmed.count <= shape.count && Array(shape.suffix(trimmed.count)) == Array(trimmed)
    }

    /// Resolves a possibly negative axis against `rank`.
    static func normalizedAxis(_ axis: Int, rank: Int, operation: String) -> Int {
        let resolved = axis < 0 ? axis + rank : axis
        precondition(
            resolved >= 0 && resolved < rank,
            "\(operation): axis \(axis) is out of range for a tensor of rank \(rank).")
        return resolved
    }
}
