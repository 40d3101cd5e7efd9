/// Where a view's pixels come from in its source image: the crop's box, in coordinates
/// normalised to the source's width and height (0…1, x to the right, y down), and whether the
/// view is mirrored left to right.
///
/// ``RandomResizedCrop`` and ``RandomHorizontalFlip`` record it as they run (see
/// ``ImageAugmentation/apply(to:geometry:generator:)``); ``DataLoader/Batch/geometry`` holds it
/// per view and image, and tasks read it through ``SharedForward/cropGeometry(_:)``. A view
/// point (x, y), also in 0…1 of the view, shows the source point ``sourcePoint(x:y:)``.
///
/// A view pasted onto a canvas (``RandomPaste``) shows its source only in the pasted square: its
/// box, the canvas's, reaches beyond the source, and ``pastedBox`` is the part of it the pasted
/// picture shows; ``shownSourcePoint(x:y:)`` and ``viewPoint(x:y:)`` leave the rest out.
/// ``canvasPictures`` says which picture each pixel of the canvas shows.
public struct CropGeometry: Sendable, Equatable {
    /// The box's edges in the source, normalised.
    public var left, top, right, bottom: Double
    /// Whether the view is mirrored left to right.
    public var isFlipped: Bool
    /// For a view pasted onto a canvas, the part of the source the pasted picture shows, in the
    /// same coordinates (the view's box before the paste); `nil` when the whole box shows the source.
    public var pastedBox: SourceBox?
    /// For a view pasted onto a canvas, which picture each of its pixels shows: the pasted view,
    /// a distractor or the background; `nil` for a view that was not pasted (or was cropped after).
    public var canvasPictures: CanvasPictures?

    /// The box from `left` to `right` and `top` to `bottom`, in normalised source coordinates,
    /// showing the source only inside `pastedBox` when there is one.
    public init(
        left: Double, top: Double, right: Double, bottom: Double, isFlipped: Bool = false, pastedBox: SourceBox? = nil
    ) {
        self.left = left
        self.top = top
        self.right = right
        self.bottom = bottom
        self.isFlipped = isFlipped
        self.pastedBox = pastedBox
    }

    /// The whole image, unflipped: the geometry of a view before any crop.
    public static let wholeImage = CropGeometry(left: 0, top: 0, right: 1, bottom: 1)

    /// The source point shown at the view point (`x`, `y`), both in 0…1 of the view.
    public func sourcePoint(x: Double, y: Double) -> (x: Double, y: Double) {
        let width = right - left
        return (isFlipped ? right - x * width : left + x * width, top + y * (bottom - top))
    }

    /// The source point shown at the view point (`x`, `y`), or `nil` where a pasted view shows
    /// something else (the canvas around the pasted picture).
    public func shownSourcePoint(x: Double, y: Double) -> (x: Double, y: Double)? {
        let point = sourcePoint(x: x, y: y)
        guard pastedBox?.contains(x: point.x, y: point.y) ?? true else { return nil }
        return point
    }

    /// The view point showing the source point (`x`, `y`), or `nil` when the crop does not
    /// contain it (the box's right and bottom edges excluded) or, pasted, does not show it.
    public func viewPoint(x: Double, y: Double) -> (x: Double, y: Double)? {
        guard (left..<right).contains(x), (top..<bottom).contains(y), pastedBox?.contains(x: x, y: y) ?? true else {
            return nil
        }
        let along = (x - left) / (right - left)
        return (isFlipped ? 1 - along : along, (y - top) / (bottom - top))
    }

    /// This geometry after cropping the view to the box `region` of a `width × height` view (a
    /// pasted canvas's picture map does not follow the crop: it is dropped).
    public func cropped(to region: PixelRegion, width: Int, height: Int) -> CropGeometry {
        reframed(
            left: Double(region.left) / Double(width), top: Double(region.top) / Double(height),
            right: Double(region.left + region.width) / Double(width), bottom: Double(region.top + region.height) / Double(height))
    }

    /// The geometry of a `canvasSize`-pixel square canvas on which the view is drawn, scaled, into
    /// the square of side `side` whose top-left pixel is (`left`, `top`): the canvas's box reaches
    /// beyond this view's, and ``pastedBox`` is this view's box.
    public func pasted(top: Int, left: Int, side: Int, canvasSize: Int) -> CropGeometry {
        let scale = Double(canvasSize) / Double(side)
        let origin = (x: -Double(left) / Double(side), y: -Double(top) / Double(side))
        var canvas = reframed(left: origin.x, top: origin.y, right: origin.x + scale, bottom: origin.y + scale)
        canvas.pastedBox = pastedBox ?? SourceBox(left: self.left, top: self.top, right: right, bottom: bottom)
        return canvas
    }

    /// This geometry for a view whose box is the rectangle from (`left`, `top`) to (`right`,
    /// `bottom`) in this view's normalised coordinates (beyond 0…1 where it reaches outside it).
    private func reframed(left: Double, top: Double, right: Double, bottom: Double) -> CropGeometry {
        let first = sourcePoint(x: left, y: top), last = sourcePoint(x: right, y: bottom)
        return CropGeometry(
            left: min(first.x, last.x), top: first.y, right: max(first.x, last.x), bottom: last.y, isFlipped: isFlipped,
            pastedBox: pastedBox)
    }

    /// This geometry after mirroring the view left to right.
    public func mirrored() -> CropGeometry {
        var mirrored = self
        mirrored.isFlipped.toggle()
        mirrored.canvasPictures = canvasPictures?.mirrored()
        return mirrored
    }

    /// For each patch of the view `source` (row-major over `sourceGrid`), the index of the
    /// patch of the view `target` (row-major over `targetGrid`) that shows the source image's
    /// point at the patch's centre, or `nil` when `target` does not show it (or `source`, pasted,
    /// shows no point of the image there). Both views must be crops of the same image.
    public static func correspondingPatches(
        from source: CropGeometry, to target: CropGeometry, sourceGrid: PatchGrid, targetGrid: PatchGrid
    ) -> [Int?] {
        (0..<sourceGrid.count).map { patch in
            let centre = sourceGrid.centre(of: patch)
            guard
                let point = source.shownSourcePoint(x: centre.x, y: centre.y),
                let seen = target.viewPoint(x: point.x, y: point.y)
            else { return nil }
            let targetRow = min(Int(seen.y * Double(targetGrid.height)), targetGrid.height - 1)
            let targetColumn = min(Int(seen.x * Double(targetGrid.width)), targetGrid.width - 1)
            return targetRow * targetGrid.width + targetColumn
        }
    }
}

/// Which picture each pixel of a square canvas shows, as ``RandomPaste`` draws it: the pasted
/// view, one of the distractors under it, or the background between them.
public struct CanvasPictures: Sendable, Equatable {
    /// What one pixel shows.
    public enum Picture: Sendable, Equatable, Hashable {
        case background
        /// The pasted view: the crop's own image.
        case view
        /// The distractor read from this index of the images the paste draws from (in training,
        /// an image's position in its batch: see ``DataLoader``).
        case distractor(Int)
    }

    /// The canvas's side in pixels.
    public let side: Int
    /// Per pixel, row-major: −1 for the background, −2 for the view, else the distractor's index.
    private var codes: [Int32]

    /// A canvas of `side × side` pixels showing only background.
    public init(side: Int) {
        precondition(side > 0, "A canvas needs a positive side, got \(side).")
        self.side = side
        codes = Array(repeating: -1, count: side * side)
    }

    /// The picture shown at pixel (`column`, `row`).
    public subscript(column: Int, row: Int) -> Picture {
        get {
            let code = codes[row * side + column]
            return code == -1 ? .background : code == -2 ? .view : .distractor(Int(code))
        }
        set {
            switch newValue {
            case .background: codes[row * side + column] = -1
            case .view: codes[row * side + column] = -2
            case .distractor(let index): codes[row * side + column] = Int32(index)
            }
        }
    }

    /// The picture at the view point (`x`, `y`), both in 0…1 of the canvas.
    public func picture(x: Double, y: Double) -> Picture {
        self[min(max(Int(x * Double(side)), 0), side - 1), min(max(Int(y * Double(side)), 0), side - 1)]
    }

    /// The map of the canvas mirrored left to right.
    public func mirrored() -> CanvasPictures {
        var mirrored = self
        for row in 0..<side {
            for column in 0..<side { mirrored.codes[row * side + column] = codes[row * side + side - 1 - column] }
        }
        return mirrored
    }
}

/// A rectangle of a source image, in coordinates normalised to its width and height (0…1, x to
/// the right, y down).
public struct SourceBox: Sendable, Equatable {
    public var left, top, right, bottom: Double

    public init(left: Double, top: Double, right: Double, bottom: Double) {
        self.left = left
        self.top = top
        self.right = right
        self.bottom = bottom
    }

    /// Whether the point (`x`, `y`) lies inside, the right and bottom edges excluded.
    public func contains(x: Double, y: Double) -> Bool {
        (left..<right).contains(x) && (top..<bottom).contains(y)
    }
}

/// The patch grid of a view: `height` rows of `width` patches, numbered row-major (as the
/// backbone's patch tokens are).
public struct PatchGrid: Sendable, Equatable {
    public var height: Int, width: Int

    public init(height: Int, width: Int) {
        precondition(height > 0 && width > 0, "A patch grid needs positive sides, got \(height)×\(width).")
        self.height = height
        self.width = width
    }

    /// The grid of `features`.
    public init(of features: BackboneFeatures) {
        self.init(height: features.gridHeight, width: features.gridWidth)
    }

    /// The number of patches.
    public var count: Int { height * width }

    /// The centre of `patch` (row-major) in coordinates normalised to the view (0…1).
    public func centre(of patch: Int) -> (x: Double, y: Double) {
        ((Double(patch % width) + 0.5) / Double(width), (Double(patch / width) + 0.5) / Double(height))
    }
}
