extension Tensor {
    /// The same elements viewed with another shape; one extent may be -1 to be inferred.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var resolved = newShape
        if let inferred = newShape.firstIndex(of: -1) {
            let known = newShape.enumerated().filter { $0.offset != inferred }.reduce(1) { $0 * $1.element }
            precondition(
                known > 0 && count % known == 0,
                "Cannot reshape \(describe) to \(newShape): \(count) elements do not divide evenly.")
            resolved[inferred] = count / known
        }
        precondition(
            resolved.reduce(1, *) == count,
            "Cannot reshape \(describe) (\(count) elements) to \(newShape).")
        if resolved == shape { return self }
        let sourceShape = shape
        return Tensor(shape: resolved, storage: storage).recording("reshape", inputs: [self]) { g in
            [g.reshaped(sourceShape)]
        }
    }

    /// The axes reordered: axis `i` of the result is axis `order[i]` of this tensor.
    public func permuted(_ order: [Int]) -> Tensor {
        precondition(
            order.count == rank && Set(order) == Set(0..<rank),
            "permuted(\(order)) needs a permutation of 0..<\(rank) for \(describe).")
        if order == Array(0..<rank) { return self }
        let newShape = order.map { shape[$0] }
        let sourceStrides = ShapeRules.contiguousStrides(shape)
        let result = Tensor(uninitializedShape: newShape)
        let loop = StridedLoop(
            shape: newShape,
            strides: [ShapeRules.contiguousStrides(newShape), order.map { sourceStrides[$0] }])
        let inner = loop.innerExtent, outStride = loop.innerStride(0), inStride = loop.innerStride(1)
        let out = result.storage.base, input = storage.base
        loop.forEachRow { outOffset, inOffset, _ in
            for i in 0..<inner { out[outOffset + i * outStride] = input[inOffset + i * inStride] }
        }
        var inverse = [Int](repeating: 0, count: rank)
        for (position, axis) in order.enumerated() { inverse[axis] = position }
        return result.recording("permute", inputs: [self]) { g in [g.permuted(inverse)] }
    }

    /// The tensor with two axes swapped.
    public func transposed(_ first: Int = -2, _ second: Int = -1) -> Tensor {
        let a = ShapeRules.normalizedAxis(first, rank: rank, operation: "transposed")
        let b = ShapeRules.normalizedAxis(second, rank: rank, operation: "transposed")
        var order = Array(0..<rank)
        order.swapAt(a, b)
        return permuted(order)
    }

    /// The elements at positions `range` along `axis`.
    public func sliced(_ range: Range<Int>, axis: Int = 0) -> Tensor {
        let axis = ShapeRules.normalizedAxis(axis, rank: rank, operation: "sliced")
        precondition(
            range.lowerBound >= 0 && range.upperBound <= shape[axis],
            "sliced(\(range), axis: \(axis)) is out of bounds for \(describe).")
        var newShape = shape
        newShape[axis] = range.count
        let outer = shape[..<axis].reduce(1, *)
        let inner = shape[(axis + 1)...].reduce(1, *)
        let result = Tensor(uninitializedShape: newShape)
        let input = storage.base, out = result.storage.base
        let rowLength = range.count * inner
        for o in 0..<outer {
            (out + o * rowLength).update(
                from: input + (o * shape[axis] + range.lowerBound) * inner, count: rowLength)
        }
        let sourceShape = shape
        return result.recording("slice", inputs: [self]) { g in
            let full = Tensor.zeros(sourceShape)
            let source = g.storage.base, target = full.storage.base
            for o in 0..<outer {
                (target + (o * sourceShape[axis] + range.lowerBound) * inner).update(
                    from: source + o * rowLength, count: rowLength)
            }
            return [full]
        }
    }

    /// Splits along `axis` into consecutive pieces of the given sizes.
    public func split(sizes: [Int], axis: Int = 0) -> [Tensor] {
        let resolved = ShapeRules.normalizedAxis(axis, rank: rank, operation: "split")
        precondition(
            sizes.reduce(0, +) == shape[resolved],
            "split(sizes: \(sizes)) must add up to extent \(shape[resolved]) of axis \(resolved) of \(describe).")
        var start = 0
        return sizes.map { size in
            defer { start += size }
            return sliced(start..<(start + size), axis: resolved)
        }
    }

    /// Splits along `axis` into `parts` equal pieces.
    public func chunked(_ parts: Int, axis: Int = 0) -> [Tensor] {
        let resolved = ShapeRules.normalizedAxis(axis, rank: rank, operation: "chunked")
        precondition(
            parts > 0 && shape[resolved] % parts == 0,
            "chunked(\(parts)) needs axis \(resolved) of \(describe) to divide evenly.")
        return split(sizes: Array(repeating: shape[resolved] / parts, count: parts), axis: resolved)
    }

    /// Joins tensors along `axis`; all other extents must agree.
    public static func concatenate(_ tensors: [Tensor], axis: Int = 0) -> Tensor {
        precondition(!tensors.isEmpty, "concatenate needs at least one tensor.")
        let first = tensors[0]
        let axis = ShapeRules.normalizedAxis(axis, rank: first.rank, operation: "concatenate")
        for tensor in tensors {
            precondition(
                tensor.rank == first.rank
                    && tensor.shape.indices.allSatisfy { $0 == axis || tensor.shape[$0] == first.shape[$0] },
                "concatenate along axis \(axis): \(tensor.describe) does not match \(first.describe).")
        }
        var newShape = first.shape
        newShape[axis] = tensors.reduce(0) { $0 + $1.shape[axis] }
        let outer = first.shape[..<axis].reduce(1, *)
        let inner = first.shape[(axis + 1)...].reduce(1, *)
        let result = Tensor(uninitializedShape: newShape)
        let out = result.storage.base
        let outRow = newShape[axis] * inner
        var offset = 0
        for tensor in tensors {
            let rowLength = tensor.shape[axis] * inner
            for o in 0..<outer {
                (out + o * outRow + offset).update(from: tensor.storage.base + o * rowLength, count: rowLength)
            }
            offset += rowLength
        }
        let sizes = tensors.map { $0.shape[axis] }
        return result.recording("concatenate", inputs: tensors) { g in
            g.split(sizes: sizes, axis: axis)
        }
    }

    /// The rows (slices along axis 0) at `indices`, in that order; indices may repeat.
    public func gatherRows(_ indices: [Int]) -> Tensor {
        precondition(rank >= 1, "gatherRows needs a tensor of rank ≥ 1, got \(describe).")
        let rows = shape[0]
        let rowLength = count / max(rows, 1)
        var newShape = shape
        newShape[0] = indices.count
        let result = Tensor(uninitializedShape: newShape)
        let input = storage.base, out = result.storage.base
        for (position, index) in indices.enumerated() {
            precondition(index >= 0 && index < rows, "gatherRows: index \(index) out of 0..<\(rows) for \(describe).")
            (out + position * rowLength).update(from: input + index * rowLength, count: rowLength)
        }
        let sourceShape = shape
        return result.recording("gatherRows", inputs: [self]) { g in
            let full = Tensor.zeros(sourceShape)
            let source = g.storage.base, target = full.storage.base
            for (position, index) in indices.enumerated() {
                let row = target + index * rowLength, from = source + position * rowLength
                for i in 0..<rowLength { row[i] += from[i] }
            }
            return [full]
        }
    }

    /// The `k` largest elements along the last axis, in descending order, and their positions
    /// (flattened, `shape.dropLast() + [k]`). Ties keep the lower position first.
    public func topK(_ k: Int) -> (values: Tensor, indices: [Int]) {
        precondition(rank >= 1 && k >= 1 && k <= shape[rank - 1], "topK(\(k)) on \(describe).")
        let columns = shape[rank - 1]
        let rows = count / columns
        var indices = [Int](repeating: 0, count: rows * k)
        let input = storage.base
        var order = Array(0..<columns)
        for row in 0..<rows {
            let line = input + row * columns
            order = Array(0..<columns)
            // Partial selection sort: k is small (SelfPatch keeps 4 of 8).
            for position in 0..<k {
                var best = position
                for candidate in (position + 1)..<columns {
                    let a = line[order[candidate]], b = line[order[best]]
                    if a > b || (a == b && order[candidate] < order[best]) { best = candidate }
                }
                order.swapAt(position, best)
                indices[row * k + position] = order[position]
            }
        }
        let flat = (0..<(rows * k)).map { (($0 / k) * columns) + indices[$0] }
        let values = reshaped([rows * columns]).gatherRows(flat).reshaped(Array(shape.dropLast()) + [k])
        return (values, indices)
    }
}
