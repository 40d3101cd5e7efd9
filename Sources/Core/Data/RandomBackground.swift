/// Redraws, with a given probability, the background of an image whose content is light on
/// black (Fashion-MNIST, MNIST): pixels whose brightest channel is at most ``threshold`` get a
/// smooth random background — a base colour plus plane waves, as ``FashionMNISTScenes`` draws its
/// canvases — and the others a random tint, a factor in 0.55…1 per channel, as the scenes tint
/// their garments.
///
/// Two views of one image then differ in background and colour, so neither can tell the views
/// apart from other images' views and the content must: the background augmentations of Ryali et
/// al. ("Characterizing and improving the robustness of self-supervised learning through
/// background augmentations", 2021), with the mask read off the black background instead of a
/// saliency model.
public struct RandomBackground: ImageAugmentation, Equatable {
    /// The probability of redrawing.
    public var probability: Double

    /// Pixels whose brightest channel is at most this are background (the scenes' threshold).
    public static let threshold = FashionMNISTScenes.foregroundThreshold

    /// A redraw applied with `probability`.
    public init(probability: Double) { self.probability = probability }

    public func apply(to image: inout Image, generator: inout RandomGenerator) {
        guard generator.nextUniformDouble() < probability else { return }
        Self.redraw(&image, using: &generator)
    }

    /// Redraws `image`'s background and tints the rest, unconditionally, with the random choices
    /// drawn from `generator`.
    public static func redraw(_ image: inout Image, using generator: inout RandomGenerator) {
        // The scenes' waves make ½ to 2 cycles per 56 pixels around a 28-pixel garment: the same
        // per twice the image's side.
        let side = max(image.width, image.height)
        let background = FashionMNISTScenes.background(canvasSize: side, span: 2 * side, using: &generator)
        let tint = FashionMNISTScenes.tint(using: &generator)
        for y in 0..<image.height {
            for x in 0..<image.width {
                let pixel = 3 * (y * image.width + x), source = 3 * (y * side + x)
                let brightest = max(image.pixels[pixel], image.pixels[pixel + 1], image.pixels[pixel + 2])
                for channel in 0..<3 {
                    image.pixels[pixel + channel] =
                        brightest <= threshold
                        ? background[source + channel] : UInt8(Float(image.pixels[pixel + channel]) * tint[channel])
                }
            }
        }
    }
}
