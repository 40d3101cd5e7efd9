/// Building pictures (attention maps, PCA colourings, similarity maps) as RGB images.
extension Image {
    /// A picture filled with one colour.
    public init(width: Int, height: Int, red: UInt8, green: UInt8, blue: UInt8) {
        self.init(width: width, height: height, pixels: Array([[UInt8]](repeating: [red, green, blue], count: width * height).joined()))
    }

    /// The colour of pixel (`x`, `y`).
    public subscript(x: Int, y: Int) -> (red: UInt8, green: UInt8, blue: UInt8) {
        get {
            let i = (y * width + x) * 3
            return (pixels[i], pixels[i + 1], pixels[i + 2])
        }
        set {
            let i = (y * width + x) * 3
            pixels[i] = newValue.red
            pixels[i + 1] = newValue.green
            pixels[i + 2] = newValue.blue
        }
    }

    /// A heat map of `values` (row-major, `gridWidth` per row) min-max scaled to the viridis
    /// colour map, each value drawn as a `scale × scale` block.
    public static func heatMap(_ values: [Float], gridHeight: Int, gridWidth: Int, scale: Int) -> Image {
        precondition(values.count == gridHeight * gridWidth, "heatMap: \(values.count) values for \(gridHeight)×\(gridWidth).")
        let finite = values.filter(\.isFinite)
        let lower = finite.min() ?? 0, upper = finite.max() ?? 1
        let span = upper > lower ? upper - lower : 1
        return blocks(gridHeight: gridHeight, gridWidth: gridWidth, scale: scale) { cell in
            ColorMap.viridis(Double((values[cell] - lower) / span))
        }
    }

    /// A picture of `gridHeight × gridWidth` blocks of `scale × scale` pixels, block `cell`
    /// (row-major) coloured `colour(cell)`: nearest upsampling of a patch grid to the image.
    static func blocks(
        gridHeight: Int, gridWidth: Int, scale: Int, colour: (Int) -> (red: UInt8, green: UInt8, blue: UInt8)
    ) -> Image {
        precondition(scale >= 1, "Image: the scale must be positive.")
        var image = Image(width: gridWidth * scale, height: gridHeight * scale, red: 0, green: 0, blue: 0)
        for row in 0..<gridHeight {
            for column in 0..<gridWidth {
                let value = colour(row * gridWidth + column)
                for y in (row * scale)..<((row + 1) * scale) {
                    for x in (column * scale)..<((column + 1) * scale) { image[x, y] = value }
                }
            }
        }
        return image
    }

    /// An image tensor `[channels, height, width]` (1 or 3 channels, any range) min-max scaled
    /// to 0…255; one channel becomes grey.
    public static func fromImage(_ image: Tensor) -> Image {
        precondition(
            image.rank == 3 && (image.shape[0] == 1 || image.shape[0] == 3),
            "Image.fromImage: expected [1 or 3, height, width], got \(image.describe).")
        let channels = image.shape[0], height = image.shape[1], width = image.shape[2]
        let values = image.elements
        let lower = values.min() ?? 0, upper = values.max() ?? 1
        let span = upper > lower ? upper - lower : 1
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                for channel in 0..<3 {
                    let value = values[(min(channel, channels - 1) * height + y) * width + x]
                    pixels[(y * width + x) * 3 + channel] = UInt8(((value - lower) / span * 255).rounded())
                }
            }
        }
        return Image(width: width, height: height, pixels: pixels)
    }

    /// The images laid out left to right in rows of `columns`, `spacing` white pixels apart.
    public static func tiled(_ images: [Image], columns: Int, spacing: Int = 2) -> Image {
        precondition(!images.isEmpty && columns >= 1, "Image.tiled needs images and a positive column count.")
        let cellWidth = images.map(\.width).max()!, cellHeight = images.map(\.height).max()!
        let columnCount = min(columns, images.count), rowCount = (images.count + columns - 1) / columns
        var result = Image(
            width: columnCount * cellWidth + (columnCount - 1) * spacing,
            height: rowCount * cellHeight + (rowCount - 1) * spacing, red: 255, green: 255, blue: 255)
        for (index, image) in images.enumerated() {
            let left = (index % columns) * (cellWidth + spacing), top = (index / columns) * (cellHeight + spacing)
            for y in 0..<image.height {
                for x in 0..<image.width { result[left + x, top + y] = image[x, y] }
            }
        }
        return result
    }
}
