import Foundation
@testable import SSLCore
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

    /// A run as training and `ssl-run eval` leave it: a configuration, metrics with health
    /// values, a collapse warning, schedules, online probes and phase times, a summary with probe
    /// figures and two real pictures.
    private func makeEvaluatedRun(_ path: String, name: String, trainedTop1: Double, precision: String? = nil) throws {
        let report = try RunReport(folder: path)
        let configuration = """
            {\(precision.map { "\"precision\": \"\($0)\"," } ?? "")
             "backbone": {"embedDimension": 16, "depth": 2, "heads": 2, "patchSize": 4, "imageSize": 16},
             "batchSize": 32, "epochs": 1, "data": {"subset": 64},
             "tasks": [{"name": "dino", "options": {"out-dim": "64"}, "weight": 1}]}
            """
        try AtomicFile.write(Array(configuration.utf8), to: "\(path)/config.json")
        for step in 0..<6 {
            var values: [String: Double] = [
                "loss": 6 - Double(step) / 2, "dino.loss": 6 - Double(step) / 2, "dino.teacher_entropy": 3 + Double(step) / 5,
                "lr": 1e-3 * Double(step), "dino.teacher_temperature": 0.04, "time/backbone": 0.5, "time/dino": 0.3,
            ]
            if step >= 3 { values["collapse/dino.uniform_teacher"] = 1 }
            try report.log(step: step, epoch: 0, values)
        }
        try report.log(step: 6, epoch: 0, ["online/knn/top1@20": trainedTop1 - 0.1, "online_random/knn/top1@20": 0.3, "data/skipped_files": 0])
        try report.log(step: 6, epoch: 0, ["online/knn/top1@20": trainedTop1, "online_random/knn/top1@20": 0.3, "data/skipped_files": 0])
        for source in ["trained", "random"] {
            try ImageEncoder.writePNG(Image(width: 12, height: 8, red: 10, green: 200, blue: 30), to: "\(path)/\(source)-attention.png")
        }
        try report.writeSummary(RunSummary(
            name: name,
            metrics: [
                "trained/knn/top1@20": trainedTop1, "random/knn/top1@20": 0.3, "pixels/knn/top1@20": 0.6,
                "trained/dense_retrieval/mIoU": 0.2, "random/dense_retrieval/mIoU": 0.25,
            ],
            details: ["readout": "class"],
            pictures: ["trained", "random"].map { .init(title: "\($0): last-block attention <heads>", path: "\($0)-attention.png") }))
    }

    func testReportReadsTopDownAndIsSelfContained() throws {
        try makeEvaluatedRun(folder, name: "DINO", trainedTop1: 0.7)
        let path = try RunReport(folder: folder).writeReport()
        let html = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertTrue(html.hasPrefix("<!DOCTYPE html>"))
        XCTAssertFalse(html.contains("src=\"http") || html.contains("<script"), "nothing is loaded from elsewhere or run")
        XCTAssertTrue(html.contains("name=\"viewport\""))
        // What the run is, then the verdict, the curves, the pictures and the details, in that order.
        let order = ["<dt>tasks</dt><dd>dino × 1</dd>", "<dt>precision</dt><dd>fp32</dd>", "id=\"verdict\"", ">Losses</h3>",
                     ">Health</h3>", ">Schedules</h3>", ">Online probes</h3>", ">Time per step</h3>", ">Other values</h3>",
                     ">Pictures</h2>", "id=\"details\""]
        let positions = try order.map { try XCTUnwrap(html.range(of: $0)?.lowerBound, $0) }
        XCTAssertEqual(positions, positions.sorted())
        XCTAssertTrue(html.contains("<dt>steps</dt><dd>6 (epoch 1 of 1)</dd>"))
        XCTAssertTrue(html.contains("<dt>speed</dt><dd>40.0 images/s (batch 32)</dd>"), "32 images in the 0.8 s a step takes on average")
        XCTAssertTrue(html.contains("<dd>dino.uniform_teacher at steps 3–5</dd>"))
        // The verdict: a row per probe in natural order, the best of each row marked.
        XCTAssertTrue(html.contains("<tr><th scope=\"row\">dense_retrieval/mIoU</th><td class=\"number\">20.00%</td>"
            + "<td class=\"number best\" title=\"best of the row\"><strong>25.00%</strong></td><td class=\"number\">–</td></tr>"))
        XCTAssertTrue(html.contains("<tr><th scope=\"row\">knn/top1@20</th><td class=\"number best\" title=\"best of the row\">"
            + "<strong>70.00%</strong></td><td class=\"number\">30.00%</td><td class=\"number\">60.00%</td></tr>"))
        // Health: the uniform-teacher zone from 0.97·log 64 shaded, the collapse warning marked.
        XCTAssertTrue(html.contains(">dino: teacher entropy</text>"))
        XCTAssertEqual(html.components(separatedBy: "<rect class=\"band\"").count - 1, 1)
        XCTAssertEqual(html.components(separatedBy: "<rect class=\"span\"").count - 1, 2, "on the loss and the entropy charts")
        XCTAssertTrue(html.contains(">dino.uniform_teacher</text>"))
        // Series that never change are text; a probe's baseline stays a line beside it.
        XCTAssertTrue(html.contains("<li>dino.teacher_temperature = 0.04 throughout (6 logged values)</li>"))
        XCTAssertTrue(html.contains("<li>data/skipped_files = 0 throughout (2 logged values)</li>"))
        XCTAssertFalse(html.contains(">data</text>"))
        XCTAssertTrue(html.contains(">knn/top1@20</text>") && html.contains(">random</text>"))
        // The phases stacked: areas, closed.
        XCTAssertTrue(html.contains(">seconds per step</text>"))
        XCTAssertTrue(html.contains(" Z\" fill=\"#4e79a7\" fill-opacity=\"0.75\""))
        // Pictures: trained beside random under one caption with a colour scale, twice their size.
        XCTAssertTrue(html.contains("<div class=\"picture-heading\">trained</div><div class=\"picture-heading\">random</div>"))
        XCTAssertEqual(html.components(separatedBy: "width=\"24\" src=\"data:image/png;base64,").count - 1, 2)
        XCTAssertTrue(html.contains("last-block attention &lt;heads&gt;"))
        XCTAssertTrue(html.contains("<span class=\"scale\">"))
        XCTAssertTrue(html.contains("image-rendering: pixelated"))
        // The details keep what the verdict does not show.
        XCTAssertTrue(html.contains("<tr><td>readout</td><td>class</td></tr>"))
        XCTAssertFalse(html.contains("<td>trained/knn/top1@20</td>"))
    }

    func testUnreadableConfigurationIsNamed() throws {
        try makeEvaluatedRun(folder, name: "DINO", trainedTop1: 0.7)
        try AtomicFile.write(Array("{ torn".utf8), to: "\(folder!)/config.json")
        XCTAssertThrowsError(try RunReport(folder: folder).writeReport()) { error in
            XCTAssertTrue("\(error)".hasPrefix("\(self.folder!)/config.json: not a JSON object"), "\(error)")
        }
    }

    func testComparisonOverlaysCurvesAndPutsVerdictsSideBySide() throws {
        try makeEvaluatedRun("\(folder!)/a", name: "DINO", trainedTop1: 0.5)
        try makeEvaluatedRun("\(folder!)/b", name: "DINO + SelfPatch", trainedTop1: 0.625, precision: "bf16")
        try FileManager.default.createDirectory(atPath: "\(folder!)/c", withIntermediateDirectories: true)
        let html = try RunReport.renderComparison(runs: ["\(folder!)/a", "\(folder!)/b", "\(folder!)/c"])
        XCTAssertTrue(html.contains("<title>DINO vs DINO + SelfPatch vs c</title>"))
        XCTAssertEqual(html.components(separatedBy: "<table class=\"verdict\">").count - 1, 2, "c has no probe figures")
        XCTAssertTrue(html.contains("<caption>DINO</caption>") && html.contains("<caption>DINO + SelfPatch</caption>"))
        XCTAssertTrue(html.contains("<dt>precision</dt><dd>fp32</dd>") && html.contains("<dt>precision</dt><dd>bf16</dd>"), "as configured")
        XCTAssertTrue(html.contains(">DINO: total</text>") && html.contains(">DINO + SelfPatch: total</text>"), "one loss chart, both runs")
        XCTAssertEqual(html.components(separatedBy: ">loss</text>").count - 1, 1)
        XCTAssertTrue(html.contains(">DINO + SelfPatch: dino.uniform_teacher</text>"))
        XCTAssertTrue(html.contains("<li>dino.teacher_temperature (DINO) = 0.04 throughout (6 logged values)</li>"))
        XCTAssertTrue(html.contains("<th>DINO</th><th>DINO + SelfPatch</th><th>c</th>"))
    }

    func testCollapseStretchesFollowTheMarkedSteps() {
        let marks: [Int: Bool] = [0: false, 10: true, 20: true, 30: false, 40: true]
        let records = marks.keys.sorted().map { step in
            MetricsRecord(step: step, values: marks[step]! ? ["loss": 1, "collapse/dino.single_prototype": 1] : ["loss": 1])
        }
        XCTAssertEqual(RunDescription.collapseStretches(in: records), [
            .init(name: "dino.single_prototype", firstStep: 10, lastStep: 20), .init(name: "dino.single_prototype", firstStep: 40, lastStep: 40),
        ])
    }

    func testStackedSeriesAreRunningTotals() {
        let stacked = SVGLineChart.stacked([
            .init(name: "a", points: [(0, 1), (1, 2)]), .init(name: "b", points: [(1, 3), (2, .nan)]),
        ])
        XCTAssertEqual(stacked.map { $0.points.map(\.y) }, [[1, 2, 0], [1, 5, 0]])
        XCTAssertEqual(stacked[1].points.map(\.x), [0, 1, 2])
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
