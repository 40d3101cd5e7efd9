/// DINO's and MoCo v3's `GaussianBlur`: with a given probability, PIL's
/// `ImageFilter.GaussianBlur` with a radius (standard deviation) drawn uniformly from a range.
public struct RandomGaussianBlur: ImageAugmentation, Equatable {
    /// The probability of a blur.
    public var probability: Double
    /// The range of the blur's standard deviation, in pixels.
    public var radius: ClosedRange<Double>

    /// A blur applied with `probability`, its radius uniform in `radius`.
    public init(probability: Double, radius: ClosedRange<Double> = 0.1...2.0) {
        self.probability = probability
        self.radius = radius
    }

    public func apply(to image: inout Image, generator: inout RandomGenerator) {
        guard generator.nextUniformDouble() < probability else { return }
        let sigma = radius.lowerBound + (radius.upperBound - radius.lowerBound) * generator.nextUniformDouble()
        image.gaussianBlur(radius: Float(sigma))
    }
}
