/// Solarisation with a given probability: PIL's `ImageOps.solarize` with threshold 128, as DINO
/// and MoCo v3 use it.
public struct RandomSolarization: ImageAugmentation, Equatable {
    /// The probability of solarising.
    public var probability: Double
    /// Values at or above the threshold are inverted.
    public var threshold: Int

    /// Solarisation applied with `probability`.
    public init(probability: Double, threshold: Int = 128) {
        self.probability = probability
        self.threshold = threshold
    }

    public func apply(to image: inout Image, generator: inout RandomGenerator) {
        if generator.nextUniformDouble() < probability { image.solarize(threshold: threshold) }
    }
}
