#if canImport(Glibc)
import Glibc
#endif

/// torchvision's `RandomResizedCrop`: a random region with a random area fraction and aspect
/// ratio, resized to `size × size`.
public struct RandomResizedCrop: ImageAugmentation, Equatable {
    /// The side of the output.
    public var size: Int
    /// The range of the region's area as a fraction of the image's area.
    public var scale: ClosedRange<Double>
    /// The range of the region's width / height (sampled uniformly in log space).
    public var ratio: ClosedRange<Double>
    /// The resampling filter.
    public var interpolation: Interpolation

    /// A crop to `size × size`; torchvision's defaults are scale 0.08…1 and ratio 3/4…4/3.
    public init(
        size: Int, scale: ClosedRange<Double> = 0.08...1, ratio: ClosedRange<Double> = 3.0 / 4...4.0 / 3,
        interpolation: Interpolation = .bilinear
    ) {
        precondition(size > 0, "A crop needs a positive size, got \(size).")
        self.size = size
        self.scale = scale
        self.ratio = ratio
        self.interpolation = interpolation
    }

    /// The region torchvision's `get_params` would choose: up to ten tries of a random area and
    /// log-uniform aspect ratio that fit the image, then the whole image clipped to the ratio
    /// range, centred.
    public func region(width: Int, height: Int, generator: inout RandomGenerator) -> PixelRegion {
        let area = Double(width * height)
        let logRatio = log(ratio.lowerBound)...log(ratio.upperBound)
        for _ in 0..<10 {
            let targetArea = area * uniform(scale, &generator)
            let aspectRatio = exp(uniform(logRatio, &generator))
            let cropWidth = Int((targetArea * aspectRatio).squareRoot().rounded(.toNearestOrEven))
            let cropHeight = Int((targetArea / aspectRatio).squareRoot().rounded(.toNearestOrEven))
            if cropWidth > 0, cropWidth <= width, cropHeight > 0, cropHeight <= height {
                let top = Int.random(in: 0...(height - cropHeight), using: &generator)
                let left = Int.random(in: 0...(width - cropWidth), using: &generator)
                return PixelRegion(top: top, left: left, height: cropHeight, width: cropWidth)
            }
        }
        let imageRatio = Double(width) / Double(height)
        var cropWidth = width, cropHeight = height
        if imageRatio < ratio.lowerBound {
            cropHeight = Int((Double(width) / ratio.lowerBound).rounded(.toNearestOrEven))
        } else if imageRatio > ratio.upperBound {
            cropWidth = Int((Double(height) * ratio.upperBound).rounded(.toNearestOrEven))
        }
        return PixelRegion(
            top: (height - cropHeight) / 2, left: (width - cropWidth) / 2, height: cropHeight, width: cropWidth)
    }

    public func apply(to image: inout Image, generator: inout RandomGenerator) {
        var geometry = CropGeometry.wholeImage
        apply(to: &image, geometry: &geometry, generator: &generator)
    }

    public func apply(to image: inout Image, geometry: inout CropGeometry, generator: inout RandomGenerator) {
        let chosen = region(width: image.width, height: image.height, generator: &generator)
        geometry = geometry.cropped(to: chosen, width: image.width, height: image.height)
        image = image.resized(region: chosen, width: size, height: size, interpolation: interpolation)
    }

    private func uniform(_ range: ClosedRange<Double>, _ generator: inout RandomGenerator) -> Double {
        range.lowerBound + (range.upperBound - range.lowerBound) * generator.nextUniformDouble()
    }
}
