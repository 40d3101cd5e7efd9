/// Replaces the image by its luma in all three channels with a given probability
/// (torchvision's `RandomGrayscale`; PIL's `convert("L")`, ITU-R 601-2).
public struct RandomGrayscale: ImageAugmentation, Equatable {
    /// The probability of the conversion.
    public var probability: Double

    /// A conversion applied with `probability`.
    public init(probability: Double) { self.probability = probability }

    public func apply(to image: inout Image, generator: inout RandomGenerator) {
        if generator.nextUniformDouble() < probability { image.convertToGreyscale() }
    }
}
