extension Image {
    /// The three principal components of patch features mapped to red, green and blue, as in
    /// DINO's feature visualisations: one picture per image, each patch a `scale × scale` block.
    ///
    /// The components are fitted jointly on all patches of `patches` (`[images, gridHeight ·
    /// gridWidth, dim]`): the covariance of the centred features (one GEMM), then power
    /// iteration with deflation for the top three eigenvectors, each signed so that its
    /// largest-magnitude loading is positive. Each component's projections are min-max scaled
    /// to 0…255 over all images, so colours compare across the pictures of one call.
    public static func principalComponents(
        patches: Tensor, gridHeight: Int, gridWidth: Int, scale: Int, iterations: Int = 100, seed: UInt64 = 0
    ) -> [Image] {
        precondition(
            patches.rank == 3 && patches.shape[1] == gridHeight * gridWidth,
            "principalComponents: patches \(patches.describe) must be [images, \(gridHeight * gridWidth), dim].")
        let images = patches.shape[0], perImage = patches.shape[1], dimension = patches.shape[2]
        let rows = images * perImage
        let centered = Tensor(uninitializedShape: [rows, dimension])
        patches.withElements { values in
            var mean = [Float](repeating: 0, count: dimension)
            for row in 0..<rows {
                for d in 0..<dimension { mean[d] += values[row * dimension + d] / Float(rows) }
            }
            let out = centered.storage.base
            for row in 0..<rows {
                for d in 0..<dimension { out[row * dimension + d] = values[row * dimension + d] - mean[d] }
            }
        }
        let covariance = Tensor(uninitializedShape: [dimension, dimension])
        BLAS.gemm(
            transposeA: true, m: dimension, n: dimension, k: rows, alpha: 1 / Float(max(rows, 1)),
            a: centered.storage.base, lda: dimension, b: centered.storage.base, ldb: dimension,
            c: covariance.storage.base, ldc: dimension)
        let components = topEigenvectors(
            of: covariance.elements.map(Double.init), dimension: dimension, count: min(3, dimension),
            iterations: iterations, seed: seed)
        var projections = [[Double]](repeating: [Double](repeating: 0, count: rows), count: components.count)
        centered.withElements { values in
            for (index, component) in components.enumerated() {
                for row in 0..<rows {
                    var total = 0.0
                    for d in 0..<dimension { total += Double(values[row * dimension + d]) * component[d] }
                    projections[index][row] = total
                }
            }
        }
        let bytes = projections.map { values -> [UInt8] in
            let lower = values.min() ?? 0, upper = values.max() ?? 1
            let span = upper > lower ? upper - lower : 1
            return values.map { UInt8((($0 - lower) / span * 255).rounded()) }
        }
        return (0..<images).map { image in
            blocks(gridHeight: gridHeight, gridWidth: gridWidth, scale: scale) { cell in
                let row = image * perImage + cell
                func channel(_ index: Int) -> UInt8 { index < bytes.count ? bytes[index][row] : 0 }
                return (channel(0), channel(1), channel(2))
            }
        }
    }

    /// The `count` leading unit eigenvectors of the symmetric positive semi-definite matrix
    /// `matrix` (row-major, `dimension²`), by power iteration, each kept orthogonal to the
    /// earlier ones.
    static func topEigenvectors(of matrix: [Double], dimension: Int, count: Int, iterations: Int, seed: UInt64) -> [[Double]] {
        var generator = RandomGenerator(seed: seed)
        var vectors: [[Double]] = []
        func normalized(_ v: [Double]) -> [Double] {
            let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            return norm > 0 ? v.map { $0 / norm } : v
        }
        func orthogonalized(_ v: [Double]) -> [Double] {
            var result = v
            for previous in vectors {
                let dot = zip(result, previous).reduce(0) { $0 + $1.0 * $1.1 }
                for d in 0..<dimension { result[d] -= dot * previous[d] }
            }
            return result
        }
        for _ in 0..<count {
            var v = normalized(orthogonalized((0..<dimension).map { _ in generator.nextNormal() }))
            for _ in 0..<iterations {
                var product = [Double](repeating: 0, count: dimension)
                for row in 0..<dimension {
                    var total = 0.0
                    for column in 0..<dimension { total += matrix[row * dimension + column] * v[column] }
                    product[row] = total
                }
                let next = normalized(orthogonalized(product))
                if next.allSatisfy({ $0 == 0 }) { break }
                v = next
            }
            if let largest = v.indices.max(by: { abs(v[$0]) < abs(v[$1]) }), v[largest] < 0 { v = v.map { -$0 } }
            vectors.append(v)
        }
        return vectors
    }
}
