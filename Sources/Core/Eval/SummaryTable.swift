import Foundation

/// A table of text cells laid out in aligned columns for the terminal: the first column
/// left-aligned, the others right-aligned, a rule under the header.
public struct SummaryTable: Sendable, Equatable {
    /// The column titles.
    public var header: [String]
    /// The cells, one array per row, as many as ``header``.
    public var rows: [[String]]

    public init(header: [String], rows: [[String]]) {
        precondition(rows.allSatisfy { $0.count == header.count }, "SummaryTable: every row needs \(header.count) cells.")
        self.header = header
        self.rows = rows
    }

    /// The runs side by side: one row per detail, then one per metric (sorted by name), one
    /// column per run; a value a run lacks is shown as `–`.
    public static func comparing(_ summaries: [RunSummary]) -> SummaryTable {
        let detailKeys = Set(summaries.flatMap(\.details.keys)).sorted()
        let metricKeys = Set(summaries.flatMap(\.metrics.keys)).sorted()
        let rows = detailKeys.map { key in [key] + summaries.map { $0.details[key] ?? "–" } }
            + metricKeys.map { key in [key] + summaries.map { $0.metrics[key].map(formatted) ?? "–" } }
        return SummaryTable(header: ["metric"] + summaries.map(\.name), rows: rows)
    }

    /// A number with four significant digits, in exponent form when very large or small.
    public static func formatted(_ value: Double) -> String {
        guard value.isFinite else { return value.isNaN ? "nan" : (value > 0 ? "inf" : "-inf") }
        let magnitude = abs(value)
        if magnitude != 0 && (magnitude >= 1e5 || magnitude < 1e-3) { return String(format: "%.3e", value) }
        return String(format: "%.4g", value)
    }

    /// The table as lines of text, each ending in a newline.
    public func render() -> String {
        let widths = header.indices.map { column in
            ([header] + rows).map { $0[column].count }.max() ?? 0
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { column, cell in
                let padding = String(repeating: " ", count: widths[column] - cell.count)
                return column == 0 ? cell + padding : padding + cell
            }.joined(separator: "  ") + "\n"
        }
        let rule = widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ") + "\n"
        return line(header) + rule + rows.map(line).joined()
    }
}
