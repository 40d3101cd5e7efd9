import Foundation
import SSLCore
import XCTest

/// metrics.jsonl, summary.json, report.html and the terminal table.
final class EvalRunReportTests: XCTestCase {
    private var folder: String!

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "ssl-report-\(UUID().uuidString)"
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: folder)
    }

    private func makeRun(_ path: String, name: String, finalTop1: Double) throws {
        let report = try RunReport(folder: path)
        try report.log(step: 0, epoch: 0, ["loss": 6.5, "health/teacher_entropy": 4.1])
        try report.log(step: 10, epoch: 0, ["loss": 5.9, "loss/patch": .nan])
        try report.log(step: 20, epoch: 1, ["loss": 5.2, "knn/top1@20": finalTop1])
        let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        try Data(png).write(to: URL(fileURLWithPath: "\(path)/attention.png"))
        try report.writeSummary(RunSummary(
            name: name, metrics: ["knn/top1@20": finalTop1, "dense/mIoU": 0.25], details: ["preset": "tiny"],
            pictures: [.init(title: "attention <heads>", path: "attention.png")]))
    }

    func testMetricsLinesAreJSONObjectsAndReadBack() throws {
        try makeRun(folder, name: "DINO", finalTop1: 0.5)
        let text = try String(contentsOfFile: "\(folder!)/metrics.jsonl", encoding: .utf8)
        let lines = text.split(separator: "\n")
        XCTAssertEqual(lines.count, 3)
        for line in lines {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            XCTAssertNotNil(object?["step"], String(line))
        }
        XCTAssertEqual(String(lines[1]), #"{"step":10,"epoch":0,"loss":5.9,"loss/patch":null}"#)
        let run = try RunReport.loadRun(folder: folder)
        XCTAssertEqual(run.records.map(\.step), [0, 10, 20])
        XCTAssertEqual(run.records[2].epoch, 1)
        XCTAssertEqual(run.records[2].values["knn/top1@20"], 0.5)
        XCTAssertTrue(run.records[1].values["loss/patch"]!.isNaN)
        XCTAssertEqual(run.summary.name, "DINO")
        XCTAssertEqual(run.summary.details["preset"], "tiny")
        // Appending after reopening keeps the earlier lines.
        try RunReport(folder: folder).log(step: 30, ["loss": 5])
        XCTAssertEqual(try RunReport.loadRun(folder: folder).records.count, 4)
    }

    func testKeysAreEscapedInJSON() throws {
        let record = MetricsRecord(step: 1, values: ["a \"quoted\"\\name": 2])
        XCTAssertEqual(try MetricsRecord(jsonLine: record.jsonLine).values, ["a \"quoted\"\\name": 2])
        XCTAssertThrowsError(try MetricsRecord(jsonLine: "[1, 2]"))
    }

    func testReportIsSelfContainedWithChartsTableAndPictures() throws {
        try makeRun(folder, name: "DINO", finalTop1: 0.5)
        let path = try RunReport(folder: folder).writeReport()
        let html = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertTrue(html.hasPrefix("<!DOCTYPE html>"))
        XCTAssertEqual(html.components(separatedBy: "<svg").count - 1, 3, "charts: loss, health, knn")
        XCTAssertLessThan(html.range(of: ">loss</text>")!.lowerBound, html.range(of: ">health</text>")!.lowerBound, "losses first")
        XCTAssertTrue(html.contains("<path d=\"M"))
        XCTAssertTrue(html.contains("data:image/png;base64,iVBORw0KGgo="))
        XCTAssertTrue(html.contains("attention &lt;heads&gt;"))
        XCTAssertTrue(html.contains("<td>knn/top1@20</td><td class=\"number\">0.5</td>"))
        XCTAssertFalse(html.contains("src=\"http"), "nothing is loaded from elsewhere")
    }

    func testComparisonShowsRunsSideBySide() throws {
        try makeRun("\(folder!)/a", name: "DINO", finalTop1: 0.5)
        try makeRun("\(folder!)/b", name: "DINO + SelfPatch", finalTop1: 0.625)
        try FileManager.default.createDirectory(atPath: "\(folder!)/c", withIntermediateDirectories: true)
        let html = try RunReport.renderComparison(runs: ["\(folder!)/a", "\(folder!)/b", "\(folder!)/c"])
        XCTAssertTrue(html.contains("<th>DINO</th><th>DINO + SelfPatch</th><th>c</th>"))
        XCTAssertTrue(html.contains(">DINO + SelfPatch: knn/top1@20</text>"))
        XCTAssertTrue(html.contains("<td class=\"number\">0.625</td><td class=\"number\">–</td>"))
    }

    func testTerminalSummaryTable() {
        let table = SummaryTable.comparing([
            RunSummary(name: "DINO", metrics: ["knn/top1@20": 0.7123, "loss": 12345678]),
            RunSummary(name: "random init", metrics: ["knn/top1@20": 0.5]),
        ])
        XCTAssertEqual(table.render(), """
            metric            DINO  random init
            -----------  ---------  -----------
            knn/top1@20     0.7123          0.5
            loss         1.235e+07            –

            """)
    }
}
