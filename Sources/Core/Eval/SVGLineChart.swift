import Foundation

/// A line chart rendered as a self-contained inline SVG element: axes with rounded ticks, one
/// coloured polyline per series (broken at non-finite values, with point markers when a series
/// has few points) and a legend.
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
        let finite = series.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite }
        var xRange = (finite.map(\.x).min() ?? 0, finite.map(\.x).max() ?? 1)
        var yRange = (finite.map(\.y).min() ?? 0, finite.map(\.y).max() ?? 1)
        if xRange.1 <= xRange.0 { xRange = (xRange.0 - 1, xRange.0 + 1) }
        if yRange.1 <= yRange.0 {
            let pad = max(abs(yRange.0) * 0.1, 1e-3)
            yRange = (yRange.0 - pad, yRange.0 + pad)
        }
        // The legend sits right of the plot, wide enough for the longest name (~6.5 px a character).
        let legendWidth = 40 + 6.5 * Double(series.map(\.name.count).max() ?? 0)
        let totalWidth = width + Int(legendWidth.rounded(.up))
        let left = 64.0, right = Double(width) - 10, top = 30.0, bottom = Double(height) - 40
        func px(_ x: Double) -> Double { left + (x - xRange.0) / (xRange.1 - xRange.0) * (right - left) }
        func py(_ y: Double) -> Double { bottom - (y - yRange.0) / (yRange.1 - yRange.0) * (bottom - top) }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }

        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"\(totalWidth)\" height=\"\(height)\" "
            + "viewBox=\"0 0 \(totalWidth) \(height)\" font-family=\"sans-serif\" font-size=\"11\">\n"
        svg += "<text x=\"\(f(left))\" y=\"18\" font-size=\"13\" font-weight=\"bold\">\(HTML.escaped(title))</text>\n"
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
        for (index, line) in series.enumerated() {
            let colour = Self.palette[index % Self.palette.count]
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
            let legendY = top + 14 * Double(index)
            svg += "<rect x=\"\(f(right + 10))\" y=\"\(f(legendY))\" width=\"10\" height=\"10\" fill=\"\(colour)\"/>"
            svg += "<text x=\"\(f(right + 24))\" y=\"\(f(legendY + 9))\">\(HTML.escaped(line.name))</text>\n"
        }
        return svg + "</svg>"
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
