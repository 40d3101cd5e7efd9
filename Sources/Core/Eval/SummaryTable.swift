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

    /// The runs side by side: one row per detail, then one per metric (in ``naturalOrder(_:_:)``),
    /// one column per run; a value a run lacks is shown as `–`.
    public static func comparing(_ summaries: [RunSummary]) -> SummaryTable {
        let detailKeys = Set(summaries.flatMap(\.details.keys)).sorted()
        let metricKeys = Set(summaries.flatMap(\.metrics.keys)).sorted(by: naturalOrder)
        let rows = detailKeys.map { key in [key] + summaries.map { $0.details[key] ?? "–" } }
            + metricKeys.map { key in [key] + summaries.map { $0.metrics[key].map(formatted) ?? "–" } }
        return SummaryTable(header: ["metric"] + summaries.map(\.name), rows: rows)
    }

    /// Probe results side by side: one row per probe (in ``naturalOrder(_:_:)``), one column per
    /// feature source, from metrics keyed `<column>/<probe>` (e.g. `trained/knn/top1@20`,
    /// `random/knn/top1@20`, `pixels/knn/top1@20`), as percentages; a value a column lacks is
    /// shown as `–`. Keys of other columns are left out.
    public static func probes(_ metrics: [String: Double], columns: [String]) -> SummaryTable {
        var probes: Set<String> = []
        for key in metrics.keys {
            for column in columns where key.hasPrefix(column + "/") { probes.insert(String(key.dropFirst(column.count + 1))) }
        }
        let rows = probes.sorted(by: naturalOrder).map { probe in
            [probe] + columns.map { column in metrics["\(column)/\(probe)"].map { String(format: "%.2f%%", 100 * $0) } ?? "–" }
        }
        return SummaryTable(header: ["probe"] + columns, rows: rows)
    }

    /// Whether `left` sorts before `right` when runs of digits compare as numbers, so that
    /// `top1@20` comes before `top1@100` and `top1@200` before `top5@10`.
    public static func naturalOrder(_ left: String, _ right: String) -> Bool {
        var leftIndex = left.startIndex, rightIndex = right.startIndex
        while leftIndex < left.endIndex && rightIndex < right.endIndex {
            let leftCharacter = left[leftIndex], rightCharacter = right[rightIndex]
            if leftCharacter.isASCII && leftCharacter.isNumber && rightCharacter.isASCII && rightCharacter.isNumber {
                let leftEnd = left[leftIndex...].firstIndex { !($0.isASCII && $0.isNumber) } ?? left.endIndex
                let rightEnd = right[rightIndex...].firstIndex { !($0.isASCII && $0.isNumber) } ?? right.endIndex
                let leftNumber = left[leftIndex..<leftEnd].drop { $0 == "0" }, rightNumber = right[rightIndex..<rightEnd].drop { $0 == "0" }
                if leftNumber.count != rightNumber.count { return leftNumber.count < rightNumber.count }
                if leftNumber != rightNumber { return leftNumber < rightNumber }
                leftIndex = leftEnd
                rightIndex = rightEnd
            } else {
                if leftCharacter != rightCharacter { return leftCharacter < rightCharacter }
                leftIndex = left.index(after: leftIndex)
                rightIndex = right.index(after: rightIndex)
            }
        }
        return left[leftIndex...].isEmpty && !right[rightIndex...].isEmpty
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
