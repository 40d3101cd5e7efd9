/// Where a view's pixels come from in its source image: the crop's box, in coordinates
/// normalised to the source's width and height (0…1, x to the right, y down), and whether the
/// view is mirrored left to right.
///
/// ``RandomResizedCrop`` and ``RandomHorizontalFlip`` record it as they run (see
/// ``ImageAugmentation/apply(to:geometry:generator:)``); ``DataLoader/Batch/geometry`` holds it
/// per view and image, and tasks read it through ``SharedForward/cropGeometry(_:)``. A view
/// point (x, y), also in 0…1 of the view, shows the source point ``sourcePoint(x:y:)``.
public struct CropGeometry: Sendable, Equatable {
    /// The box's edges in the source, normalised.
    public var left, top, right, bottom: Double
    /// Whether the view is mirrored left to right.
    public var isFlipped: Bool

    /// The box from `left` to `right` and `top` to `bottom`, in normalised source coordinates.
    public init(left: Double, top: Double, right: Double, bottom: Double, isFlipped: Bool = false) {
        self.left = left
        self.top = top
        self.right = right
        self.bottom = bottom
        self.isFlipped = isFlipped
    }

    /// The whole image, unflipped: the geometry of a view before any crop.
    public static let wholeImage = CropGeometry(left: 0, top: 0, right: 1, bottom: 1)

    /// The source point shown at the view point (`x`, `y`), both in 0…1 of the view.
    public func sourcePoint(x: Double, y: Double) -> (x: Double, y: Double) {
        let width = right - left
        return (isFlipped ? right - x * width : left + x * width, top + y * (bottom - top))
    }

    /// The view point showing the source point (`x`, `y`), or `nil` when the crop does not
    /// contain it (the box's right and bottom edges excluded).
    public func viewPoint(x: Double, y: Double) -> (x: Double, y: Double)? {
        guard (left..<right).contains(x), (top..<bottom).contains(y) else { return nil }
        let along = (x - left) / (right - left)
        return (isFlipped ? 1 - along : along, (y - top) / (bottom - top))
    }

    /// This geometry after cropping the view to the box `region` of a `width × height` view.
    public func cropped(to region: PixelRegion, width: Int, height: Int) -> CropGeometry {
        let first = sourcePoint(x: Double(region.left) / Double(width), y: Double(region.top) / Double(height))
        let last = sourcePoint(
            x: Double(region.left + region.width) / Double(width), y: Double(region.top + region.height) / Double(height))
        return CropGeometry(
            left: min(first.x, last.x), top: first.y, right: max(first.x, last.x), bottom: last.y, isFlipped: isFlipped)
    }

    /// For each patch of the view `source` (row-major over `sourceGrid`), the index of the
    /// patch of the view `target` (row-major over `targetGrid`) that shows the source image's
    /// point at the patch's centre, or `nil` when `target` does not show it. Both views must be
    /// crops of the same image.
    public static func correspondingPatches(
        from source: CropGeometry, to target: CropGeometry, sourceGrid: PatchGrid, targetGrid: PatchGrid
    ) -> [Int?] {
        (0..<sourceGrid.count).map { patch in
            let row = patch / sourceGrid.width, column = patch % sourceGrid.width
            let point = source.sourcePoint(
                x: (Double(column) + 0.5) / Double(sourceGrid.width), y: (Double(row) + 0.5) / Double(sourceGrid.height))
            guard let seen = target.viewPoint(x: point.x, y: point.y) else { return nil }
            let targetRow = min(Int(seen.y * Double(targetGrid.height)), targetGrid.height - 1)
            let targetColumn = min(Int(seen.x * Double(targetGrid.width)), targetGrid.width - 1)
            return targetRow * targetGrid.width + targetColumn
        }
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
}
