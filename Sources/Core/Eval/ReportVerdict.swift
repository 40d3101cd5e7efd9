/// The verdict table of a run report: one row per probe (``SummaryTable/probes(_:columns:)``),
/// a column per feature source (trained, random, raw pixels), the best value of each row marked.
struct ReportVerdict {
    /// The run's final figures, keyed `<source>/<probe>`.
    var metrics: [String: Double]
    /// The caption above the table (the run's name when runs are compared).
    var caption: String

    /// The feature sources the metrics have, in ``RunSummary/probeColumns`` order.
    var columns: [String] {
        RunSummary.probeColumns.filter { column in metrics.keys.contains { $0.hasPrefix(column + "/") } }
    }

    /// The table as HTML, or `nil` when the run has no probe figures (it was not evaluated).
    func html() -> String? {
        let columns = columns
        guard !columns.isEmpty else { return nil }
        let table = SummaryTable.probes(metrics, columns: columns)
        var html = "<table class=\"verdict\">\n<caption>\(HTML.escaped(caption))</caption>\n<thead><tr>"
            + table.header.map { "<th scope=\"col\">\(HTML.escaped($0))</th>" }.joined() + "</tr></thead>\n<tbody>\n"
        for row in table.rows {
            let probe = row[0]
            let values = columns.map { metrics["\($0)/\(probe)"] }
            let best = values.compactMap { $0 }.filter(\.isFinite).max()
            html += "<tr><th scope=\"row\">\(HTML.escaped(probe))</th>"
            for (cell, value) in zip(row.dropFirst(), values) {
                let isBest = value != nil && value == best && columns.count > 1
                html += isBest
                    ? "<td class=\"number best\" title=\"best of the row\"><strong>\(HTML.escaped(cell))</strong></td>"
                    : "<td class=\"number\">\(HTML.escaped(cell))</td>"
            }
            html += "</tr>\n"
        }
        return html + "</tbody>\n</table>\n"
    }
}
