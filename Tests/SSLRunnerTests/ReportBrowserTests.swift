import Foundation
import SSLCore
import XCTest

/// The report of a tiny real run, opened in headless Chromium as a reader opens it: it loads
/// without console errors, every picture decodes, the verdict table has a row per probe, and
/// the page does not render blank.
final class ReportBrowserTests: XCTestCase {
    func testReportOfATinyRunRendersInChromium() throws {
        let browser = try HeadlessChromium.installed()
        let folder = try CommandLine.trainAndEvaluateTinyRun("report-browser").folder
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let summary = try RunReport.loadRun(folder: folder).summary
        let expectedRows = SummaryTable.probes(summary.metrics, columns: RunSummary.probeColumns).rows.map { $0[0] }
        XCTAssertTrue(expectedRows.contains("knn/top1@20") && expectedRows.contains("dense_retrieval/mIoU"), "\(expectedRows)")

        // The harness loads the report in a frame and writes what it finds into its own page.
        let harness = "\(folder)/harness.html"
        try AtomicFile.write(Array(HeadlessChromium.harness(loading: RunReport.reportFileName).utf8), to: harness)
        let load = try browser.run(["--dump-dom", "file://\(harness)"], in: folder)
        let consoleLines = load.log.split(separator: "\n").filter { $0.contains(":CONSOLE") || $0.contains("Uncaught") }
        XCTAssertEqual(consoleLines, [], "the page logs to the console")
        let findings = try HeadlessChromium.Findings(dom: load.output)
        XCTAssertEqual(findings.errors, [], "script errors")
        XCTAssertEqual(findings.images, summary.pictures.count, "every picture is on the page")
        XCTAssertEqual(findings.undecodedImages, [], "pictures that do not decode")
        XCTAssertEqual(findings.verdictTables, 1)
        XCTAssertEqual(findings.verdictHeader, ["probe"] + RunSummary.probeColumns)
        XCTAssertEqual(findings.verdictRows, expectedRows)
        XCTAssertEqual(findings.rowsWithoutBest, [], "every verdict row marks its best value")
        XCTAssertGreaterThan(findings.charts, 5)

        // The screenshot (kept out of the repository, in the temporary folder) is not blank.
        let screenshot = "\(folder)/screenshot.png"
        let shot = try browser.run(["--screenshot=\(screenshot)", "--window-size=1200,2000", "file://\(folder)/\(RunReport.reportFileName)"], in: folder)
        XCTAssertEqual(shot.status, 0, shot.log)
        let image = try ImageDecoder.decode(contentsOf: screenshot)
        XCTAssertEqual([image.width, image.height], [1200, 2000])
        // A blank page has no variance; the report's text, tables and charts give some, and its
        // chart lines, bands and marked cells are in colour. (The real page: variance ≈ 800,
        // ≈ 3 % dark pixels, ≈ 0.4 % coloured ones.)
        var brightness: [Double] = [], coloured = 0
        for index in stride(from: 0, to: image.pixels.count, by: 3) {
            let channels = image.pixels[index..<(index + 3)].map(Double.init)
            brightness.append(channels.reduce(0, +) / 3)
            if channels.max()! - channels.min()! > 40 { coloured += 1 }
        }
        let mean = brightness.reduce(0, +) / Double(brightness.count)
        let variance = brightness.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(brightness.count)
        let dark = Double(brightness.filter { $0 < 200 }.count) / Double(brightness.count)
        XCTAssertGreaterThan(variance, 200, "the screenshot is nearly uniform (mean brightness \(mean))")
        XCTAssertGreaterThan(dark, 0.01, "too little is drawn on the screenshot")
        XCTAssertGreaterThan(Double(coloured) / Double(brightness.count), 0.001, "no charts or marks in colour on the screenshot")
    }
}

/// Debian's `chromium`, run headless.
struct HeadlessChromium {
    /// Where Debian's package installs it.
    static let executable = "/usr/bin/chromium"

    /// The browser is not installed where a test must not skip (`CI` is set).
    struct Missing: Error, CustomStringConvertible {
        var description: String
    }

    /// The browser; skips the test when it is not installed, or fails it when `CI` is set.
    static func installed() throws -> HeadlessChromium {
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            let message = "\(executable) is missing: `make test` installs it, or run `apt-get install -y chromium`."
            if ProcessInfo.processInfo.environment["CI"] != nil { throw Missing(description: message) }
            throw XCTSkip(message)
        }
        return HeadlessChromium()
    }

    /// Runs the browser headless with `arguments` (a profile of its own in `folder`) for at most
    /// two minutes; returns its exit status, standard output and log.
    func run(_ arguments: [String], in folder: String) throws -> (status: Int32, output: String, log: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.executable)
        process.arguments = [
            "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars", "--allow-file-access-from-files",
            "--enable-logging=stderr", "--v=0", "--user-data-dir=\(folder)/chromium-profile",
        ] + arguments
        let outputPath = "\(folder)/chromium-output.txt", logPath = "\(folder)/chromium-log.txt"
        for path in [outputPath, logPath] where !FileManager.default.createFile(atPath: path, contents: nil) {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
        }
        process.standardOutput = FileHandle(forWritingAtPath: outputPath)
        process.standardError = FileHandle(forWritingAtPath: logPath)
        process.standardInput = FileHandle.nullDevice
        try process.run()
        guard CommandLine.waitForExit(process, seconds: 120) else { throw CocoaError(.executableLoad, userInfo: [NSFilePathErrorKey: Self.executable]) }
        return (
            process.terminationStatus, try String(contentsOfFile: outputPath, encoding: .utf8), try String(contentsOfFile: logPath, encoding: .utf8)
        )
    }

    /// A page that loads `report` (a path relative to it) in a frame and, once it has loaded,
    /// writes what it finds as URI-encoded JSON into `<pre id="findings">`.
    static func harness(loading report: String) -> String {
        """
        <!DOCTYPE html><html><head><meta charset="utf-8"></head><body>
        <pre id="findings">pending</pre>
        <iframe id="report" src="\(report)" width="1200" height="2000"></iframe>
        <script>
        var errors = [];
        window.addEventListener('error', function (event) { errors.push(String(event.message)); });
        document.getElementById('report').addEventListener('load', function () {
          var findings = { errors: errors };
          try {
            var page = this.contentDocument;
            page.defaultView.addEventListener('error', function (event) { errors.push(String(event.message)); });
            var images = Array.prototype.slice.call(page.images);
            var texts = function (nodes) { return Array.prototype.map.call(nodes, function (node) { return node.textContent.trim(); }); };
            findings.images = images.length;
            findings.undecodedImages = images.filter(function (image) { return !(image.complete && image.naturalWidth > 0); })
              .map(function (image) { return image.alt; });
            findings.verdictTables = page.querySelectorAll('table.verdict').length;
            findings.verdictHeader = texts(page.querySelectorAll('table.verdict thead th'));
            findings.verdictRows = texts(page.querySelectorAll('table.verdict tbody th'));
            findings.rowsWithoutBest = texts(Array.prototype.filter.call(page.querySelectorAll('table.verdict tbody tr'),
              function (row) { return !row.querySelector('td.best'); }));
            findings.charts = page.querySelectorAll('svg.chart').length;
          } catch (error) {
            findings.errors.push('harness: ' + error);
          }
          document.getElementById('findings').textContent = encodeURIComponent(JSON.stringify(findings));
        });
        </script></body></html>
        """
    }

    /// What the harness found in the report.
    struct Findings: Decodable {
        var errors: [String]
        var images: Int
        var undecodedImages: [String]
        var verdictTables: Int
        var verdictHeader: [String]
        var verdictRows: [String]
        /// The verdict rows with no value marked best.
        var rowsWithoutBest: [String]
        var charts: Int

        /// Reads the findings from the harness page as the browser dumped it.
        init(dom: String) throws {
            guard let start = dom.range(of: "<pre id=\"findings\">"), let end = dom.range(of: "</pre>", range: start.upperBound..<dom.endIndex),
                let json = String(dom[start.upperBound..<end.lowerBound]).removingPercentEncoding
            else { throw CocoaError(.coderReadCorrupt, userInfo: [NSDebugDescriptionErrorKey: "no findings in the page: \(dom.prefix(500))"]) }
            self = try JSONDecoder().decode(Findings.self, from: Data(json.utf8))
        }
    }
}
