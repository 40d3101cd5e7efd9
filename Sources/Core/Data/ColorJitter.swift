/// torchvision's `RandomApply([ColorJitter(brightness, contrast, saturation, hue)], p)`: with
/// probability `probability`, the four adjustments in a random order, each with a random
/// factor (brightness, contrast and saturation factors uniform in [max(0, 1 − s), 1 + s], the
/// hue shift uniform in [−hue, hue]); an adjustment with strength 0 is skipped.
public struct ColorJitter: ImageAugmentation, Equatable {
    /// The probability that the jitter is applied at all.
    public var probability: Double
    /// The brightness strength.
    public var brightness: Double
    /// The contrast strength.
    public var contrast: Double
    /// The saturation strength.
    public var saturation: Double
    /// The largest hue rotation, in turns (at most 0.5).
    public var hue: Double

    /// A jitter with the given strengths, applied with `probability`.
    public init(probability: Double, brightness: Double, contrast: Double, saturation: Double, hue: Double) {
        precondition((0...0.5).contains(hue), "The hue strength must be in 0…0.5, got \(hue).")
        self.probability = probability
        self.brightness = brightness
        self.contrast = contrast
        self.saturation = saturation
        self.hue = hue
    }

    public func apply(to image: inout Image, generator: inout RandomGenerator) {
        guard generator.nextUniformDouble() < probability else { return }
        var order = [0, 1, 2, 3]
        order.shuffle(using: &generator)
        let brightnessFactor = factor(brightness, &generator)
        let contrastFactor = factor(contrast, &generator)
        let saturationFactor = factor(saturation, &generator)
        let hueShift = hue > 0 ? -hue + 2 * hue * generator.nextUniformDouble() : 0
        for adjustment in order {
            switch adjustment {
            case 0: if brightness > 0 { image.adjustBrightness(brightnessFactor) }
            case 1: if contrast > 0 { image.adjustContrast(contrastFactor) }
            case 2: if saturation > 0 { image.adjustSaturation(saturationFactor) }
            default: if hue > 0 { image.adjustHue(hueShift) }
            }
        }
    }

    private func factor(_ strength: Double, _ generator: inout RandomGenerator) -> Float {
        guard strength > 0 else { return 1 }
        let lower = max(0, 1 - strength), upper = 1 + strength
        return Float(lower + (upper - lower) * generator.nextUniformDouble())
    }
}
