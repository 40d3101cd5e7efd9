/// torchvision's `ToTensor` then `Normalize(mean, std)`: bytes to `value / 255`, then
/// `(x − mean) / std` per channel, in float32, channels first.
public struct ImageNormalization: Sendable, Equatable {
    /// The per-channel means subtracted (red, green, blue).
    public let mean: [Float]
    /// The per-channel standard deviations divided by.
    public let standardDeviation: [Float]
    /// The result for every byte value of every channel (3 × 256), computed once.
    private let table: [Float]

    /// ImageNet's statistics, which DINO, SelfPatch and MoCo v3 use.
    public static let imageNet = ImageNormalization(mean: [0.485, 0.456, 0.406], standardDeviation: [0.229, 0.224, 0.225])

    /// A normalisation with the given per-channel statistics.
    public init(mean: [Float], standardDeviation: [Float]) {
        precondition(mean.count == 3 && standardDeviation.count == 3, "Normalisation needs three means and deviations.")
        self.mean = mean
        self.standardDeviation = standardDeviation
        table = (0..<3).flatMap { channel in
            (0..<256).map { (Float($0) / 255 - mean[channel]) / standardDeviation[channel] }
        }
    }

    /// Writes `image` as `3 × height × width` floats at `destination`.
    public func write(_ image: Image, to destination: UnsafeMutablePointer<Float>) {
        let plane = image.width * image.height
        table.withUnsafeBufferPointer { table in
            image.pixels.withUnsafeBufferPointer { pixels in
                for channel in 0..<3 {
                    let output = destination + channel * plane
                    let lookup = table.baseAddress! + channel * 256
                    for pixel in 0..<plane { output[pixel] = lookup[Int(pixels[3 * pixel + channel])] }
                }
            }
        }
    }

    /// `image` as a `[3, height, width]` tensor.
    public func tensor(_ image: Image) -> Tensor {
        let result = Tensor(uninitializedShape: [3, image.height, image.width])
        write(image, to: result.storage.base)
        return result
    }

    public static func == (left: ImageNormalization, right: ImageNormalization) -> Bool {
        left.mean == right.mean && left.standardDeviation == right.standardDeviation
    }
}
