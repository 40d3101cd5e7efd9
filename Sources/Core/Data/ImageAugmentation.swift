/// A random image transformation: every random choice it makes is drawn from the generator it
/// is given, so the same generator state gives the same output.
public protocol ImageAugmentation: Sendable {
    /// Transforms `image` in place, drawing its random choices from `generator`.
    func apply(to image: inout Image, generator: inout RandomGenerator)
}
