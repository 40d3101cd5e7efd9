import Foundation

/// The record of a run in its folder: `metrics.jsonl` (one ``MetricsRecord`` per logged step or
/// evaluation), `summary.json` (a ``RunSummary``) and `report.html`, a self-contained page: what
/// the run is and its verdict table (each probe of the trained backbone beside a random one and
/// raw pixels), inline SVG charts of the logged values grouped by meaning, and the run's
/// pictures in a grid, embedded as base64 PNGs.
///
/// ```swift
/// let report = try RunReport(folder: "runs/dino")
/// try report.log(step: 10, epoch: 0, ["loss": 5.1, "health/teacher_entropy": 3.2])
/// try report.writeSummary(RunSummary(name: "DINO", metrics: ["knn/top1@20": 0.71]))
/// try report.writeReport()
/// print(SummaryTable.comparing([try RunReport.loadRun(folder: "runs/dino").summary]).render())
/// ```
public final class RunReport {
    /// The file names inside a run folder.
    public static let metricsFileName = "metrics.jsonl"
    public static let summaryFileName = "summary.json"
    public static let reportFileName = "report.html"

    /// The run folder.
    public let folder: String
    private let metricsHandle: FileHandle

    /// Opens the run in `folder` (created if needed) and appends to its `metrics.jsonl`.
    public init(folder: String) throws {
        self.folder = folder
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let path = "\(folder)/\(Self.metricsFileName)"
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw RunReportError.unreadable(path: path, reason: "could not be created")
            }
        }
        metricsHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try metricsHandle.seekToEnd()
    }

    deinit {
        try? metricsHandle.close()
    }

    /// Appends one line to `metrics.jsonl` (written through at once, so a crashed run keeps
    /// every line logged before the crash).
    public func log(step: Int, epoch: Int? = nil, _ values: [String: Double]) throws {
        try log(MetricsRecord(step: step, epoch: epoch, values: values))
    }

    /// Appends `record` to `metrics.jsonl`.
    public func log(_ record: MetricsRecord) throws {
        try metricsHandle.write(contentsOf: Data((record.jsonLine + "\n").utf8))
    }

    /// Writes `summary.json`, replacing an earlier one atomically.
    public func writeSummary(_ summary: RunSummary) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        try AtomicFile.write(Array(try encoder.encode(summary)), to: "\(folder)/\(Self.summaryFileName)")
    }

    /// Renders this run's `report.html` from its metrics and summary.
    ///
    /// - Returns: the path of the report.
    @discardableResult
    public func writeReport() throws -> String {
        let path = "\(folder)/\(Self.reportFileName)"
        try AtomicFile.write(Array(try Self.renderComparison(runs: [folder]).utf8), to: path)
        return path
    }

    /// A run read back from its folder.
    public struct LoadedRun {
        /// The run folder.
        public var folder: String
        /// The summary, or one named after the folder when `summary.json` is missing (a run
        /// that stopped early).
        public var summary: RunSummary
        /// Every line of `metrics.jsonl` (none when the file is missing).
        public var records: [MetricsRecord]
    }

    /// Reads the metrics and summary of the run in `folder`.
    public static func loadRun(folder: String) throws -> LoadedRun {
        let metricsPath = "\(folder)/\(metricsFileName)"
        var records: [MetricsRecord] = []
        if FileManager.default.fileExists(atPath: metricsPath) {
            let text = try String(contentsOfFile: metricsPath, encoding: .utf8)
            for line in text.split(whereSeparator: \.isNewline) where !line.allSatisfy(\.isWhitespace) {
                records.append(try MetricsRecord(jsonLine: String(line)))
            }
        }
        let summaryPath = "\(folder)/\(summaryFileName)"
        var summary = RunSummary(name: URL(fileURLWithPath: folder).lastPathComponent)
        if FileManager.default.fileExists(atPath: summaryPath) {
            let decoder = JSONDecoder()
            decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
            do {
                summary = try decoder.decode(RunSummary.self, from: Data(contentsOf: URL(fileURLWithPath: summaryPath)))
            } catch {
                throw RunReportError.unreadable(path: summaryPath, reason: "\(error)")
            }
        }
        return LoadedRun(folder: folder, summary: summary, records: records)
    }

    /// A self-contained HTML page showing the runs in `runs` (folders) side by side: what each
    /// run is, their verdict tables, their curves overlaid (a line per run and value), each
    /// run's pictures and their remaining details in one table (a column per run).
    public static func renderComparison(runs: [String]) throws -> String {
        try ReportPage(runs: try runs.map(loadRun(folder:))).render()
    }
}
