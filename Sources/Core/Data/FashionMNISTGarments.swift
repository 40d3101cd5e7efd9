/// Fashion-MNIST images drawn as ``FashionMNISTScenes`` draws a garment: each garment at its
/// own 28 pixels, tinted with a random colour, on a smooth textured background, keeping its class.
///
/// Training on these teaches a backbone the scenes' look — coloured garments on textured ground
/// rather than grey ones on black — while every image still holds one whole garment, as the
/// image-level objectives expect. Image `i` is source image `i` through
/// ``RandomBackground/redraw(_:using:)`` with `RandomGenerator(seed:path: [i])`, whose waves have
/// the scenes' wavelengths (½ to 2 cycles per 56 pixels), so a garment looks as it does in a
/// 56-pixel scene.
public struct FashionMNISTGarments: ImageDataset {
    /// The Fashion-MNIST split the garments come from.
    public let source: FashionMNISTDataset
    /// The seed every background and tint derives from.
    public let seed: UInt64

    public init(source: FashionMNISTDataset, seed: UInt64) {
        self.source = source
        self.seed = seed
    }

    public var count: Int { source.count }
    public var classNames: [String] { source.classNames }

    public func image(at index: Int) throws -> Image {
        precondition(index >= 0 && index < count, "Garment \(index) is outside 0..<\(count).")
        var generator = RandomGenerator(seed: seed, path: [UInt64(index)])
        var image = try source.image(at: index)
        RandomBackground.redraw(&image, using: &generator)
        return image
    }

    public func label(at index: Int) -> Int? { source.label(at: index) }

    public var description: String {
        "Fashion-MNIST garments (\(source.split.rawValue)): \(count) tinted garments on textured backgrounds of 28x28, 10 classes"
    }
}
