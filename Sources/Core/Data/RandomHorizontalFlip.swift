/// Mirrors the image left to right with a given probability (torchvision's
/// `RandomHorizontalFlip`).
public struct RandomHorizontalFlip: ImageAugmentation, Equatable {
    /// The probability of a flip.
    public var probability: Double

    /// A flip applied with `probability`.
    public init(probability: Double = 0.5) { self.probability = probability }

    public func apply(to image: inout Image, generator: inout RandomGenerator) {
        var geometry = CropGeometry.wholeImage
        apply(to: &image, geometry: &geometry, generator: &generator)
    }

    public func apply(to image: inout Image, geometry: inout CropGeometry, generator: inout RandomGenerator) {
        guard generator.nextUniformDouble() < probability else { return }
        image.flipHorizontally()
        geometry = geometry.mirrored()
    }
}

extension Image {
    /// Mirrors the image left to right.
    public mutating func flipHorizontally() {
        let width = width, height = height
        pixels.withUnsafeMutableBufferPointer { pixels in
            for row in 0..<height {
                var left = row * width * 3, right = left + (width - 1) * 3
                while left < right {
                    pixels.swapAt(left, right)
                    pixels.swapAt(left + 1, right + 1)
                    pixels.swapAt(left + 2, right + 2)
                    left += 3
                    right -= 3
                }
            }
        }
    }
}
