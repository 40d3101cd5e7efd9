#if canImport(Glibc)
import Glibc
#endif

/// Scenes for dense probes and training: Fashion-MNIST garments at random positions and scales,
/// overlapping, on a smooth textured background, with a class per pixel (0 for background,
/// 1 + the garment's class where a garment was drawn).
///
/// Scene `i` follows from `RandomGenerator(seed:path: [i])` alone, so any scene is reproducible
/// and cheap to make on demand. The background is a per-channel sum of three low-frequency
/// plane waves around a random colour. Each garment is a random source image resized
/// (bilinear) to 0.6–1.4 × 28 pixels, tinted with a random colour and drawn in order, so later
/// garments occlude earlier ones; a garment pixel is drawn, and labelled, where its grey value
/// exceeds ``foregroundThreshold``. Build the train and test scenes from the corresponding
/// Fashion-MNIST splits.
public struct FashionMNISTScenes: ImageDataset {
    /// One scene: the RGB canvas, its class map and the garments drawn on it.
    public struct Scene: Sendable, Equatable {
        /// The canvas, `canvasSize × canvasSize`.
        public var image: Image
        /// One class per pixel (row-major): 0 background, 1 + class for a garment.
        public var labels: [UInt8]
        /// The garments in drawing order (each occludes those before it).
        public var garments: [Garment]
    }

    /// Where and how one garment was drawn.
    public struct Garment: Sendable, Equatable {
        /// The index of the source image.
        public var item: Int
        /// The garment's Fashion-MNIST class (0…9).
        public var garmentClass: Int
        /// The square the resized garment covers: its top row, left column and side.
        public var top: Int, left: Int, side: Int
        /// The factor of each channel (red, green, blue) applied to the garment's grey values.
        public var tint: [Float]
    }

    /// Grey values above this belong to a garment; darker pixels show what lies beneath.
    public static let foregroundThreshold: UInt8 = 24
    /// Garments per scene.
    public static let garmentCounts = 3...5
    /// Garment sides relative to Fashion-MNIST's 28 pixels.
    public static let garmentScales = 0.6...1.4

    /// The Fashion-MNIST split garments come from.
    public let source: FashionMNISTDataset
    /// The side of the square canvas.
    public let canvasSize: Int
    /// The seed every scene derives from.
    public let seed: UInt64
    public let count: Int
    public let classNames: [String]

    /// Scenes of garments from `source` on `canvasSize × canvasSize` canvases; `count` defaults
    /// to one scene per source image.
    public init(source: FashionMNISTDataset, canvasSize: Int = 56, count: Int? = nil, seed: UInt64) {
        precondition(
            canvasSize >= Self.largestGarment, "The canvas must be at least \(Self.largestGarment) pixels, got \(canvasSize).")
        self.source = source
        self.canvasSize = canvasSize
        self.count = count ?? source.count
        self.seed = seed
        classNames = ["background"] + source.classNames
    }

    /// The side of the largest garment, and so the smallest canvas.
    public static var largestGarment: Int { Int((Double(FashionMNISTDataset.side) * garmentScales.upperBound).rounded()) }

    /// The canvas side for dense probes on a backbone of patch size `patchSize`: the smallest
    /// multiple of the patch size that is at least 56 pixels.
    public static func canvasSize(patchSize: Int) -> Int {
        precondition(patchSize >= 1, "The patch size must be positive, got \(patchSize).")
        return (56 + patchSize - 1) / patchSize * patchSize
    }

    /// Scene `index`.
    public func scene(at index: Int) -> Scene {
        precondition(index >= 0 && index < count, "Scene \(index) is outside 0..<\(count).")
        var generator = RandomGenerator(seed: seed, path: [UInt64(index)])
        var pixels = Self.background(canvasSize: canvasSize, span: canvasSize, using: &generator)
        var labels = [UInt8](repeating: 0, count: canvasSize * canvasSize)
        var garments: [Garment] = []
        for _ in 0..<Int.random(in: Self.garmentCounts, using: &generator) {
            let item = Int.random(in: 0..<source.count, using: &generator)
            let side = Int((Double(FashionMNISTDataset.side) * Double.random(in: Self.garmentScales, using: &generator)).rounded())
            let top = Int.random(in: 0...(canvasSize - side), using: &generator)
            let left = Int.random(in: 0...(canvasSize - side), using: &generator)
            let tint = Self.tint(using: &generator)
            let placement = Garment(item: item, garmentClass: Int(source.labels[item]), top: top, left: left, side: side, tint: tint)
            garments.append(placement)
            let garment = garmentPicture(placement)
            let label = source.labels[item] + 1
            for row in 0..<side {
                for column in 0..<side {
                    let grey = garment.pixels[3 * (row * side + column)]
                    guard grey > Self.foregroundThreshold else { continue }
                    let target = (top + row) * canvasSize + left + column
                    labels[target] = label
                    for channel in 0..<3 { pixels[3 * target + channel] = UInt8(Float(grey) * tint[channel]) }
                }
            }
        }
        return Scene(image: Image(width: canvasSize, height: canvasSize, pixels: pixels), labels: labels, garments: garments)
    }

    /// The grey picture of `garment` at its drawn size (as RGB, before the tint): its source
    /// image resized bilinearly.
    public func garmentPicture(_ garment: Garment) -> Image {
        let side = FashionMNISTDataset.side
        let original = source.greyPixels.withUnsafeBufferPointer { grey in
            Image(width: side, height: side, grey: UnsafeBufferPointer(rebasing: grey[(garment.item * side * side)..<((garment.item + 1) * side * side)]))
        }
        return original.resized(
            region: PixelRegion(top: 0, left: 0, height: side, width: side), width: garment.side, height: garment.side,
            interpolation: .bilinear)
    }

    /// A random garment tint: a factor in 0.55…1 per channel.
    static func tint(using generator: inout RandomGenerator) -> [Float] {
        (0..<3).map { _ in Float.random(in: 0.55...1, using: &generator) }
    }

    /// A smooth background for a `canvasSize` square: per channel, a random base colour plus three
    /// plane waves of ½ to 2 cycles per `span` pixels, each channel mixing the waves with its own
    /// amplitudes.
    static func background(canvasSize: Int, span: Int, using generator: inout RandomGenerator) -> [UInt8] {
        let waves = (0..<3).map { _ in
            let direction = Float.random(in: 0..<(2 * .pi), using: &generator)
            let frequency = Float.random(in: 0.5...2, using: &generator) * 2 * .pi / Float(span)
            return (x: frequency * cosf(direction), y: frequency * sinf(direction), phase: Float.random(in: 0..<(2 * .pi), using: &generator))
        }
        let base = (0..<3).map { _ in Float.random(in: 60...150, using: &generator) }
        let amplitudes = (0..<9).map { _ in Float.random(in: 8...30, using: &generator) }
        var pixels = [UInt8](repeating: 0, count: canvasSize * canvasSize * 3)
        for y in 0..<canvasSize {
            for x in 0..<canvasSize {
                let first = sinf(waves[0].x * Float(x) + waves[0].y * Float(y) + waves[0].phase)
                let second = sinf(waves[1].x * Float(x) + waves[1].y * Float(y) + waves[1].phase)
                let third = sinf(waves[2].x * Float(x) + waves[2].y * Float(y) + waves[2].phase)
                for channel in 0..<3 {
                    let value = base[channel] + amplitudes[3 * channel] * first + amplitudes[3 * channel + 1] * second
                        + amplitudes[3 * channel + 2] * third
                    pixels[3 * (y * canvasSize + x) + channel] = UInt8(max(0, min(255, value.rounded())))
                }
            }
        }
        return pixels
    }

    public func image(at index: Int) throws -> Image { scene(at: index).image }

    /// Scenes carry a class per pixel, not per image.
    public func label(at index: Int) -> Int? { nil }

    public var description: String {
        "Fashion-MNIST scenes (\(source.split.rawValue)): \(count) canvases of \(canvasSize)x\(canvasSize), "
            + "\(Self.garmentCounts.lowerBound)–\(Self.garmentCounts.upperBound) garments each, 11 classes with background"
    }
}
