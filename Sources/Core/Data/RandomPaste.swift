/// Pastes, with a given probability, a view of light content on black (a crop of a Fashion-MNIST
/// image) among other garments on a canvas drawn as ``FashionMNISTScenes`` draws its scenes: the
/// copy-paste augmentation of CP² (Wang et al., "CP²: Copy-Paste Contrastive Pretraining for
/// Semantic Segmentation", ECCV 2022) and InsLoc (Yang et al., "Instance Localization for
/// Self-supervised Detection Pretraining", CVPR 2021).
///
/// The canvas is the view's own size and shows the scenes' smooth textured background. On it go
/// 1–3 distractors, random images of ``distractors``, then the view on top of them; each is
/// resized (bilinear) to a random side of 0.6…1.4 × half the canvas (at most the canvas), placed
/// at a random position and tinted with a random colour, and its pixels are drawn only where their
/// brightest channel exceeds ``FashionMNISTScenes/foregroundThreshold``.
///
/// The geometry then maps the canvas to the view's source: its box reaches beyond the view's, and
/// ``CropGeometry/pastedBox`` marks the part of the source the pasted view shows, so that
/// ``CropGeometry/shownSourcePoint(x:y:)`` finds the patches that lie on it;
/// ``CropGeometry/canvasPictures`` says which picture every pixel shows. In training the
/// distractors are the other images of the view's batch (``DataLoader``), so that every garment
/// on a canvas is one whose other views the step has.
public struct RandomPaste: ImageAugmentation {
    /// Where one garment goes on the canvas and its colour.
    public struct Placement: Sendable, Equatable {
        /// The square the resized garment covers: its top row, left column and side.
        public var top: Int, left: Int, side: Int
        /// The factor of each channel (red, green, blue) applied to the garment's pixels.
        public var tint: [Float]

        /// A random placement on a `canvasSize`-pixel square canvas.
        init(canvasSize: Int, using generator: inout RandomGenerator) {
            let scale = Double.random(in: RandomPaste.garmentScales, using: &generator)
            side = min(canvasSize, max(1, Int((Double(canvasSize) / 2 * scale).rounded())))
            top = Int.random(in: 0...(canvasSize - side), using: &generator)
            left = Int.random(in: 0...(canvasSize - side), using: &generator)
            tint = FashionMNISTScenes.tint(using: &generator)
        }

        /// Draws `picture`, resized to this placement's square and tinted, on `canvas` where its
        /// brightest channel exceeds the scenes' foreground threshold, and marks those pixels as
        /// showing `shown` in `pictures`.
        func draw(_ picture: Image, as shown: CanvasPictures.Picture, on canvas: inout Image, pictures: inout CanvasPictures) {
            let resized = picture.resized(
                region: PixelRegion(top: 0, left: 0, height: picture.height, width: picture.width), width: side, height: side,
                interpolation: .bilinear)
            for row in 0..<side {
                for column in 0..<side {
                    let pixel = 3 * (row * side + column)
                    let brightest = max(resized.pixels[pixel], resized.pixels[pixel + 1], resized.pixels[pixel + 2])
                    guard brightest > FashionMNISTScenes.foregroundThreshold else { continue }
                    pictures[left + column, top + row] = shown
                    for channel in 0..<3 {
                        canvas[left + column, top + row, channel] = UInt8(Float(resized.pixels[pixel + channel]) * tint[channel])
                    }
                }
            }
        }
    }

    /// The random choices of one paste.
    public struct Layout: Sendable {
        /// The canvas's background, `canvasSize × canvasSize × 3` bytes.
        public var background: [UInt8]
        /// The distractors in drawing order: the index of each image in the dataset and its placement.
        public var distractors: [(item: Int, placement: Placement)]
        /// Where the view goes, over the distractors.
        public var view: Placement
    }

    /// The probability of pasting.
    public var probability: Double
    /// The images distractors are drawn from: the training set. Read from the loader's threads,
    /// as every ``ImageDataset`` allows.
    public let distractors: any ImageDataset

    /// Distractors per canvas.
    public static let distractorCounts = 1...3
    /// Garment sides relative to half the canvas: the scenes' 0.6…1.4 × 28 pixels on 56.
    public static let garmentScales = FashionMNISTScenes.garmentScales

    /// A paste applied with `probability`, among distractors drawn from `distractors`.
    public init(probability: Double, distractors: any ImageDataset) {
        precondition(distractors.count > 0, "RandomPaste draws its distractors from a dataset with images; \(distractors) has none.")
        self.probability = probability
        self.distractors = distractors
    }

    /// The random choices of a paste on a `canvasSize`-pixel square canvas.
    public func layout(canvasSize: Int, generator: inout RandomGenerator) -> Layout {
        let background = FashionMNISTScenes.background(canvasSize: canvasSize, span: canvasSize, using: &generator)
        let distractors = (0..<Int.random(in: Self.distractorCounts, using: &generator)).map { _ in
            (item: Int.random(in: 0..<self.distractors.count, using: &generator),
             placement: Placement(canvasSize: canvasSize, using: &generator))
        }
        return Layout(background: background, distractors: distractors, view: Placement(canvasSize: canvasSize, using: &generator))
    }

    public func apply(to image: inout Image, generator: inout RandomGenerator) {
        var geometry = CropGeometry.wholeImage
        apply(to: &image, geometry: &geometry, generator: &generator)
    }

    public func apply(to image: inout Image, geometry: inout CropGeometry, generator: inout RandomGenerator) {
        guard generator.nextUniformDouble() < probability else { return }
        precondition(image.width == image.height, "RandomPaste draws on a square canvas, got a \(image.width)x\(image.height) view.")
        let size = image.width
        let layout = layout(canvasSize: size, generator: &generator)
        var canvas = Image(width: size, height: size, pixels: layout.background)
        var pictures = CanvasPictures(side: size)
        for (item, placement) in layout.distractors {
            // An image that cannot be read leaves its place to the background.
            if let distractor = try? distractors.image(at: item) {
                placement.draw(distractor, as: .distractor(item), on: &canvas, pictures: &pictures)
            }
        }
        layout.view.draw(image, as: .view, on: &canvas, pictures: &pictures)
        image = canvas
        geometry = geometry.pasted(top: layout.view.top, left: layout.view.left, side: layout.view.side, canvasSize: size)
        geometry.canvasPictures = pictures
    }
}
