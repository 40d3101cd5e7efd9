import Foundation

/// A line chart rendered as a self-contained inline SVG element: axes with rounded ticks, one
/// coloured polyline per series (broken at non-finite values, with point markers when a series
/// has few points) or stacked areas, shaded value bands (danger zones), shaded step spans
/// (e.g. collapse warnings) and a legend. It scales down with the page (`viewBox`).
public struct SVGLineChart {
    /// One line of the chart.
    public struct Series {
        /// The legend entry.
        public var name: String
        /// (x, y) pairs in drawing order.
        public var points: [(x: Double, y: Double)]

        public init(name: String, points: [(x: Double, y: Double)]) {
            self.name = name
            self.points = points
        }
    }

    /// A labelled range shaded on the plot: of values (a band across, e.g. where an indicator
    /// means trouble) or of steps (a span from top to bottom, e.g. a collapse warning).
    public struct Shading {
        /// The range shaded; the chart's axes always cover it (a single step is drawn as a thin span).
        public var range: ClosedRange<Double>
        /// Written inside the shading.
        public var label: String

        public init(range: ClosedRange<Double>, label: String) {
            self.range = range
            self.label = label
        }
    }

    /// How the series are drawn.
    public enum Style: Sendable {
        /// One line per series.
        case lines
        /// Each series stacked on the ones before it as a filled area (parts of a whole, e.g.
        /// the time of each phase of a step); a value a series lacks at a step counts as 0.
        case stackedAreas
    }

    /// The heading above the plot.
    public var title: String
    /// The caption under the horizontal axis.
    public var xLabel: String
    /// The lines, coloured in order.
    public var series: [Series]
    /// The width of the plot with its axes; the legend is added to its right.
    public var width: Int
    /// The height of the whole chart.
    public var height: Int
    /// Value ranges shaded in red.
    public var bands: [Shading] = []
    /// Step ranges shaded in orange.
    public var spans: [Shading] = []
    /// Lines or stacked areas.
    public var style = Style.lines

    /// Distinguishable colours (Tableau 10), cycled over the series.
    static let palette = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"]

    public init(title: String, xLabel: String = "step", series: [Series], width: Int = 520, height: Int = 300) {
        self.title = title
        self.xLabel = xLabel
        self.series = series
        self.width = width
        self.height = height
    }

    /// Evenly spaced round values (1, 2 or 5 × 10ⁿ apart) covering `lower...upper`.
    static func ticks(lower: Double, upper: Double, count: Int = 5) -> [Double] {
        let span = upper - lower
        guard span > 0, span.isFinite else { return [lower] }
        let rough = span / Double(count)
        let magnitude = pow(10, floor(log10(rough)))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= rough } ?? 10 * magnitude
        var values: [Double] = []
        var value = ceil(lower / step) * step
        while value <= upper + step * 1e-9 {
            values.append(abs(value) < step * 1e-9 ? 0 : value)
            value += step
        }
        return values
    }

    /// The chart as an `<svg>` element.
    public func render() -> String {
        let drawn = style == .stackedAreas ? Self.stacked(series) : series
        let finite = drawn.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite }
        let xValues = finite.map(\.x) + spans.flatMap { [$0.range.lowerBound, $0.range.upperBound] }
        let yValues = finite.map(\.y) + bands.flatMap { [$0.range.lowerBound, $0.range.upperBound] }
            + (style == .stackedAreas ? [0] : [])
        var xRange = (xValues.min() ?? 0, xValues.max() ?? 1)
        var yRange = (yValues.min() ?? 0, yValues.max() ?? 1)
        if xRange.1 <= xRange.0 { xRange = (xRange.0 - 1, xRange.0 + 1) }
        if yRange.1 <= yRange.0 {
            let pad = max(abs(yRange.0) * 0.1, 1e-3)
            yRange = (yRange.0 - pad, yRange.0 + pad)
        }
        // The legend sits right of the plot, wide enough for the longest name (~6.5 px a character).
        let legendWidth = 40 + 6.5 * Double(series.map(\.name.count).max() ?? 0)
        let legendHeight = 30 + 14 * series.count
        let height = max(self.height, legendHeight)
        let totalWidth = width + Int(legendWidth.rounded(.up))
        let left = 64.0, right = Double(width) - 10, top = 30.0, bottom = Double(height) - 40
        func px(_ x: Double) -> Double { left + (x - xRange.0) / (xRange.1 - xRange.0) * (right - left) }
        func py(_ y: Double) -> Double { bottom - (y - yRange.0) / (yRange.1 - yRange.0) * (bottom - top) }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }

        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"\(totalWidth)\" height=\"\(height)\" "
            + "viewBox=\"0 0 \(totalWidth) \(height)\" font-family=\"sans-serif\" font-size=\"11\" role=\"img\">\n"
        svg += "<title>\(HTML.escaped(title))</title>\n"
        svg += "<text x=\"\(f(left))\" y=\"18\" font-size=\"13\" font-weight=\"bold\">\(HTML.escaped(title))</text>\n"
        for band in bands {
            let upper = py(band.range.upperBound), lower = py(band.range.lowerBound)
            svg += "<rect class=\"band\" x=\"\(f(left))\" y=\"\(f(upper))\" width=\"\(f(right - left))\" height=\"\(f(max(lower - upper, 1)))\" "
                + "fill=\"#e15759\" fill-opacity=\"0.15\"/>"
            svg += "<text x=\"\(f(right - 4))\" y=\"\(f(upper + 12))\" text-anchor=\"end\" fill=\"#b03030\">\(HTML.escaped(band.label))</text>\n"
        }
        for span in spans {
            let start = px(span.range.lowerBound), end = px(span.range.upperBound)
            svg += "<rect class=\"span\" x=\"\(f(start))\" y=\"\(f(top))\" width=\"\(f(max(end - start, 2)))\" height=\"\(f(bottom - top))\" "
                + "fill=\"#f28e2b\" fill-opacity=\"0.3\"/>"
            svg += "<text x=\"\(f(start + 2))\" y=\"\(f(top + 12))\" fill=\"#a04f00\">\(HTML.escaped(span.label))</text>\n"
        }
        svg += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(right - left))\" height=\"\(f(bottom - top))\" fill=\"none\" stroke=\"#999\"/>\n"
        for tick in Self.ticks(lower: yRange.0, upper: yRange.1) {
            let y = py(tick)
            svg += "<line x1=\"\(f(left))\" y1=\"\(f(y))\" x2=\"\(f(right))\" y2=\"\(f(y))\" stroke=\"#eee\"/>"
            svg += "<text x=\"\(f(left - 4))\" y=\"\(f(y + 4))\" text-anchor=\"end\">\(SummaryTable.formatted(tick))</text>\n"
        }
        for tick in Self.ticks(lower: xRange.0, upper: xRange.1) {
            let x = px(tick)
            svg += "<line x1=\"\(f(x))\" y1=\"\(f(bottom))\" x2=\"\(f(x))\" y2=\"\(f(bottom + 4))\" stroke=\"#999\"/>"
            svg += "<text x=\"\(f(x))\" y=\"\(f(bottom + 16))\" text-anchor=\"middle\">\(SummaryTable.formatted(tick))</text>\n"
        }
        svg += "<text x=\"\(f((left + right) / 2))\" y=\"\(height - 6)\" text-anchor=\"middle\">\(HTML.escaped(xLabel))</text>\n"
        for (index, line) in drawn.enumerated() {
            let colour = Self.palette[index % Self.palette.count]
            if style == .stackedAreas {
                // The area between this series' cumulative line and the previous one.
                let lower = index > 0 ? drawn[index - 1].points : line.points.map { (x: $0.x, y: 0.0) }
                let outline = line.points + lower.reversed()
                let path = outline.enumerated().map { "\($0.offset == 0 ? "M" : "L")\(f(px($0.element.x))),\(f(py($0.element.y)))" }
                svg += "<path d=\"\(path.joined(separator: " ")) Z\" fill=\"\(colour)\" fill-opacity=\"0.75\" stroke=\"\(colour)\"/>\n"
                svg += legendEntry(index: index, name: line.name, colour: colour, x: right + 10, y: top)
                continue
            }
            var path = "", penDown = false
            for point in line.points {
                guard point.x.isFinite && point.y.isFinite else {
                    penDown = false
                    continue
                }
                path += "\(penDown ? "L" : "M")\(f(px(point.x))),\(f(py(point.y))) "
                penDown = true
            }
            svg += "<path d=\"\(path)\" fill=\"none\" stroke=\"\(colour)\" stroke-width=\"1.5\"/>\n"
            if line.points.count <= 40 {
                for point in line.points where point.x.isFinite && point.y.isFinite {
                    svg += "<circle cx=\"\(f(px(point.x)))\" cy=\"\(f(py(point.y)))\" r=\"2.5\" fill=\"\(colour)\"/>"
                }
                svg += "\n"
            }
            svg += legendEntry(index: index, name: line.name, colour: colour, x: right + 10, y: top)
        }
        return svg + "</svg>"
    }

    /// The legend line of series `index`, the legend starting at (`x`, `y`).
    private func legendEntry(index: Int, name: String, colour: String, x: Double, y: Double) -> String {
        let legendY = y + 14 * Double(index)
        return "<rect x=\"\(String(format: "%.1f", x))\" y=\"\(String(format: "%.1f", legendY))\" width=\"10\" height=\"10\" fill=\"\(colour)\"/>"
            + "<text x=\"\(String(format: "%.1f", x + 14))\" y=\"\(String(format: "%.1f", legendY + 9))\">\(HTML.escaped(name))</text>\n"
    }

    /// The series as running totals over the steps any of them has, in step order: series `i`
    /// becomes the sum of series 0…i (missing or non-finite values count as 0).
    static func stacked(_ series: [Series]) -> [Series] {
        let steps = Set(series.flatMap { $0.points.map(\.x) }.filter(\.isFinite)).sorted()
        var totals = [Double](repeating: 0, count: steps.count)
        return series.map { line in
            var values: [Double: Double] = [:]
            for point in line.points where point.y.isFinite { values[point.x, default: 0] += point.y }
            for (index, step) in steps.enumerated() { totals[index] += values[step] ?? 0 }
            return Series(name: line.name, points: Array(zip(steps, totals)).map { (x: $0.0, y: $0.1) })
        }
    }
}

/// Escaping for text placed in HTML and SVG.
enum HTML {
    static func escaped(_ text: String) -> String {
        var result = ""
        for character in text {
            switch character {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            default: result.append(character)
            }
        }
        return result
    }
}
