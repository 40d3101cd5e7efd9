import Foundation

/// The HTML of a run report (see ``RunReport``): what the runs are and their verdict tables at
/// the top, then the curves grouped by meaning, the pictures in a grid and the remaining
/// details. One self-contained file: inline CSS and SVG, pictures as data URIs, no script.
struct ReportPage {
    var runs: [RunReport.LoadedRun]

    func render() throws -> String {
        let described = try runs.map { (run: $0, description: try RunDescription(run: $0)) }
        let title = HTML.escaped(runs.map(\.summary.name).joined(separator: " vs "))
        var html = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(title)</title>
            <style>\(Self.style)</style></head><body>
            <h1>\(title)</h1>

            """
        html += "<section id=\"runs\">\n<div class=\"side-by-side\">\n"
        for (run, description) in described {
            html += "<dl class=\"facts\">\n" + (runs.count > 1 ? "<dt class=\"run-name\">run</dt><dd class=\"run-name\">\(HTML.escaped(run.summary.name))</dd>\n" : "")
            html += description.facts.map { "<dt>\(HTML.escaped($0.label))</dt><dd>\(HTML.escaped($0.value))</dd>" }.joined(separator: "\n")
            html += "\n</dl>\n"
        }
        html += "</div>\n</section>\n"

        let verdicts = runs.compactMap { ReportVerdict(metrics: $0.summary.metrics, caption: $0.summary.name).html() }
        html += "<section id=\"verdict\">\n<h2>Verdict</h2>\n"
        html += verdicts.isEmpty
            ? "<p>No probe results yet: run <code>ssl-run eval --checkpoint &lt;run&gt;/checkpoint.h5</code>.</p>\n"
            : "<p class=\"note\">Final probes of the trained backbone beside a randomly initialised one and raw pixels "
                + "(accuracy or mIoU, higher is better; the best of each row in bold).</p>\n"
                + "<div class=\"side-by-side\">\n" + verdicts.map { "<div class=\"scrolls\">\n\($0)</div>\n" }.joined() + "</div>\n"
        html += "</section>\n"

        let sections = ReportCharts(runs: described).sections()
        html += "<section id=\"curves\">\n<h2>Curves</h2>\n"
        for section in sections {
            html += "<h3>\(HTML.escaped(section.title))</h3>\n<p class=\"note\">\(HTML.escaped(section.note))</p>\n"
            if !section.charts.isEmpty { html += "<div class=\"charts\">\n" + section.charts.joined(separator: "\n") + "\n</div>\n" }
            if !section.constants.isEmpty {
                html += "<ul class=\"constants\">\n" + section.constants.map { "<li>\(HTML.escaped($0))</li>" }.joined(separator: "\n") + "\n</ul>\n"
            }
        }
        html += "</section>\n"

        for run in runs where !run.summary.pictures.isEmpty {
            let heading = runs.count > 1 ? "Pictures: \(run.summary.name)" : "Pictures"
            html += "<section class=\"pictures\">\n<h2>\(HTML.escaped(heading))</h2>\n"
            html += ReportPictures(folder: run.folder, pictures: run.summary.pictures).html() + "</section>\n"
        }

        html += "<section id=\"details\">\n<h2>Details</h2>\n<div class=\"scrolls\">\n" + Self.html(detailsTable()) + "</div>\n</section>\n"
        return html + "</body></html>\n"
    }

    /// The summaries side by side without the probe figures the verdict tables show.
    private func detailsTable() -> SummaryTable {
        SummaryTable.comparing(runs.map { run in
            var summary = run.summary
            summary.metrics = summary.metrics.filter { key, _ in !RunSummary.probeColumns.contains { key.hasPrefix($0 + "/") } }
            return summary
        })
    }

    /// `table` as an HTML table.
    private static func html(_ table: SummaryTable) -> String {
        var html = "<table class=\"details\">\n<tr>" + table.header.map { "<th>\(HTML.escaped($0))</th>" }.joined() + "</tr>\n"
        for row in table.rows {
            html += "<tr><td>\(HTML.escaped(row[0]))</td>"
                + row.dropFirst().map { "<td\(Double($0) != nil ? " class=\"number\"" : "")>\(HTML.escaped($0))</td>" }.joined() + "</tr>\n"
        }
        return html + "</table>\n"
    }

    /// The page's CSS: readable on a phone (charts scale down, wide tables and pictures scroll).
    static let style = """

        body { font-family: system-ui, sans-serif; margin: 0 auto; padding: 16px; max-width: 1400px; color: #222; line-height: 1.4; }
        h1 { font-size: 1.6em; margin: 0 0 12px; } h2 { border-bottom: 1px solid #ddd; margin-top: 32px; } h3 { margin-bottom: 4px; }
        .note { color: #555; margin-top: 0; }
        .side-by-side { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
        .scrolls { overflow-x: auto; max-width: 100%; min-width: 0; }
        .side-by-side > dl.facts { flex: 1 1 380px; }
        dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0; }
        dl.facts dt { font-weight: bold; } dl.facts dd { margin: 0; }
        table { border-collapse: collapse; }
        caption { font-weight: bold; text-align: left; padding-bottom: 4px; }
        th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: left; }
        td.number { text-align: right; font-variant-numeric: tabular-nums; }
        td.best { background: #e3f1df; }
        table.details td:last-child { overflow-wrap: anywhere; }
        .charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 460px), 1fr)); gap: 16px; }
        svg.chart { max-width: 100%; height: auto; }
        ul.constants { color: #444; }
        .picture-grid { display: grid; grid-template-columns: repeat(var(--columns), max-content); gap: 8px 24px; overflow-x: auto; max-width: 100%; }
        .picture-heading { font-weight: bold; }
        .picture-caption { grid-column: 1 / -1; margin: 12px 0 0; max-width: 60em; }
        figure { margin: 0; }
        img { image-rendering: pixelated; max-width: none; border: 1px solid #ddd; }
        .scale { display: inline-flex; align-items: center; gap: 6px; font-size: 0.85em; white-space: nowrap; }
        .scale .bar { display: inline-block; width: 120px; height: 12px; border: 1px solid #999; }
        @media (max-width: 600px) { body { padding: 8px; } th, td { padding: 3px 6px; } table.verdict tbody th { overflow-wrap: anywhere; } }

        """
}
