import SSLCore

/// Linearly separable synthetic features for the probe tests: class c is centred on
/// `separation` · e_c plus N(0, noise²) in every dimension.
enum EvalSyntheticData {
    static func clusters(
        classCount: Int, perClass: Int, dimension: Int, separation: Float = 4, noise: Float = 0.3, seed: UInt64
    ) -> (features: Tensor, labels: [Int]) {
        precondition(dimension >= classCount)
        var generator = RandomGenerator(seed: seed)
        let noiseTensor = Tensor.randomNormal([classCount * perClass, dimension], standardDeviation: noise, generator: &generator)
        var labels: [Int] = []
        let features = noiseTensor.copy()
        for row in 0..<(classCount * perClass) {
            let label = row % classCount
            labels.append(label)
            features.storage.base[row * dimension + label] += separation
        }
        return (features, labels)
    }
}
