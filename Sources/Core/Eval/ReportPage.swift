import Foundation

/// The HTML of a run report (see ``RunReport``).
struct ReportPage {
    var runs: [RunReport.LoadedRun]

    /// The chart group of a value name: the part before the first `/`.
    static func group(of key: String) -> String {
        key.split(separator: "/", maxSplits: 1).first.map(String.init) ?? key
    }

    func render() -> String {
        let names = runs.map(\.summary.name)
        var html = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <title>\(HTML.escaped(names.joined(separator: " vs ")))</title>
            <style>
            body { font-family: sans-serif; margin: 24px; color: #222; }
            table { border-collapse: collapse; margin-bottom: 24px; }
            th, td { border: 1px solid #ccc; padding: 4px 10px; }
            td.number { text-align: right; font-variant-numeric: tabular-nums; }
            .charts, .pictures { display: flex; flex-wrap: wrap; gap: 16px; }
            figure { margin: 0; } figcaption { font-size: 12px; text-align: center; }
            img { image-rendering: pixelated; border: 1px solid #ddd; }
            </style></head><body>
            <h1>\(HTML.escaped(names.joined(separator: " vs ")))</h1>

            """
        html += "<h2>Summary</h2>\n" + summaryTable()
        html += "<h2>Curves</h2>\n<div class=\"charts\">\n" + charts().joined(separator: "\n") + "\n</div>\n"
        for run in runs where !run.summary.pictures.isEmpty {
            html += "<h2>Pictures: \(HTML.escaped(run.summary.name))</h2>\n<div class=\"pictures\">\n"
            html += run.summary.pictures.map { picture(for: $0, in: run.folder) }.joined(separator: "\n")
            html += "\n</div>\n"
        }
        return html + "</body></html>\n"
    }

    /// The summaries side by side; for a single run, its probe figures in a table of their own
    /// with a column per feature source (trained, random, pixels).
    private func summaryTable() -> String {
        var summaries = runs.map(\.summary)
        var probes = ""
        if summaries.count == 1 {
            let metrics = summaries[0].metrics
            let columns = RunSummary.probeColumns.filter { column in metrics.keys.contains { $0.hasPrefix(column + "/") } }
            if !columns.isEmpty {
                probes = Self.html(SummaryTable.probes(metrics, columns: columns))
                summaries[0].metrics = metrics.filter { key, _ in !columns.contains { key.hasPrefix($0 + "/") } }
            }
        }
        return Self.html(SummaryTable.comparing(summaries)) + probes
    }

    /// `table` as an HTML table.
    private static func html(_ table: SummaryTable) -> String {
        var html = "<table>\n<tr>" + table.header.map { "<th>\(HTML.escaped($0))</th>" }.joined() + "</tr>\n"
        for row in table.rows {
            html += "<tr><td>\(HTML.escaped(row[0]))</td>"
                + row.dropFirst().map { "<td class=\"number\">\(HTML.escaped($0))</td>" }.joined() + "</tr>\n"
        }
        return html + "</table>\n"
    }

    private func charts() -> [String] {
        let keys = Set(runs.flatMap { $0.records.flatMap(\.values.keys) })
        let groups = Dictionary(grouping: keys, by: Self.group(of:))
        // Losses first, then the other groups by name.
        let order = groups.keys.sorted { ($0 == "loss" ? 0 : 1, $0) < ($1 == "loss" ? 0 : 1, $1) }
        return order.map { group in
            var series: [SVGLineChart.Series] = []
            for run in runs {
                for key in groups[group]!.sorted() {
                    let points = run.records.compactMap { record in record.values[key].map { (x: Double(record.step), y: $0) } }
                    guard !points.isEmpty else { continue }
                    series.append(.init(name: runs.count > 1 ? "\(run.summary.name): \(key)" : key, points: points))
                }
            }
            return SVGLineChart(title: group, series: series).render()
        }
    }

    private func picture(for picture: RunSummary.Picture, in folder: String) -> String {
        let path = picture.path.hasPrefix("/") ? picture.path : "\(folder)/\(picture.path)"
        let caption = "<figcaption>\(HTML.escaped(picture.title))</figcaption>"
        guard let data = FileManager.default.contents(atPath: path) else {
            return "<figure><p>missing: \(HTML.escaped(picture.path))</p>\(caption)</figure>"
        }
        return "<figure><img alt=\"\(HTML.escaped(picture.title))\" src=\"data:image/png;base64,\(data.base64EncodedString())\">\(caption)</figure>"
    }
}
