/// A random image transformation: every random choice it makes is drawn from the generator it
/// is given, so the same generator state gives the same output.
public protocol ImageAugmentation: Sendable {
    /// Transforms `image` in place, drawing its random choices from `generator`.
    func apply(to image: inout Image, generator: inout RandomGenerator)
    /// Transforms `image` in place as ``apply(to:generator:)`` does, and updates `geometry`,
    /// the source region the image shows, when the transformation moves pixels (crops and
    /// flips do; the default, for colour changes, leaves it alone).
    func apply(to image: inout Image, geometry: inout CropGeometry, generator: inout RandomGenerator)
}

extension ImageAugmentation {
    public func apply(to image: inout Image, geometry: inout CropGeometry, generator: inout RandomGenerator) {
        apply(to: &image, generator: &generator)
    }
}
