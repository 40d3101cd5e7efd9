import Foundation

/// What a run is, read from its folder for the top of its report: the tasks and their weights,
/// the data, the architecture, how long it trained and how fast, the numeric precision and any
/// collapse warnings, from `config.json` (when present) and `metrics.jsonl`.
struct RunDescription {
    /// A pre-training task of the run.
    struct TaskWeighting: Equatable {
        var name: String
        /// Its weight in the total loss as the report shows it: a number, or a schedule's
        /// `value@position` points (1 when the configuration does not say).
        var weight: String
        /// K, the prototypes of a task that distils into prototypes (its `out-dim` option).
        var prototypeCount: Int?
    }

    /// A collapse warning: the steps at which its `collapse/<task>.<indicator>` mark was logged.
    struct CollapseStretch: Equatable {
        /// `<task>.<indicator>`.
        var name: String
        var firstStep: Int
        var lastStep: Int
    }

    /// The file name of a run's configuration inside its folder.
    static let configurationFileName = "config.json"

    /// The tasks, from the configuration or, without one, from the `<task>.loss` values logged.
    var tasks: [TaskWeighting]
    /// The backbone's width, the dimension of the embeddings whose spread is logged.
    var embedDimension: Int?
    /// The collapse warnings in step order.
    var collapses: [CollapseStretch]
    /// Label and value of each fact, in reading order.
    var facts: [(label: String, value: String)]

    /// Describes `run`; throws naming `config.json` when it is present but not a JSON object.
    init(run: RunReport.LoadedRun) throws {
        let configuration = try Self.configuration(in: run.folder)
        let training = run.records.filter { $0.values["loss"] != nil }
        let taskEntries = configuration["tasks"] as? [[String: Any]] ?? []
        if taskEntries.isEmpty {
            let names = Set(training.flatMap(\.values.keys).filter { $0.hasSuffix(".loss") }.map { String($0.dropLast(5)) })
            tasks = names.sorted().map { TaskWeighting(name: $0, weight: "1") }
        } else {
            tasks = taskEntries.compactMap { entry in
                guard let name = entry["name"] as? String else { return nil }
                let options = entry["options"] as? [String: Any] ?? [:]
                return TaskWeighting(
                    name: name,
                    weight: (entry["weight"] as? NSNumber).map { SummaryTable.formatted($0.doubleValue) }
                        ?? entry["weight"] as? String ?? "1",
                    prototypeCount: (options["out-dim"] as? String).flatMap(Int.init))
            }
        }
        let backbone = configuration["backbone"] as? [String: Any] ?? [:]
        embedDimension = (backbone["embedDimension"] as? NSNumber)?.intValue
        collapses = Self.collapseStretches(in: run.records)

        var facts: [(label: String, value: String)] = []
        if !tasks.isEmpty {
            facts.append(("tasks", tasks.map { "\($0.name) × \($0.weight)" }.joined(separator: ", ")))
        }
        facts.append(("data", Self.data(configuration)))
        if let architecture = Self.architecture(backbone) { facts.append(("backbone", architecture)) }
        if let last = training.last {
            let epochs = (configuration["epochs"] as? NSNumber).map { " of \($0)" } ?? ""
            facts.append(("steps", "\(last.step + 1) (epoch \((last.epoch ?? 0) + 1)\(epochs))"))
            // Each logged step records the seconds of its phases; their mean stands for every step.
            let stepSeconds = training.map { record in record.values.filter { $0.key.hasPrefix("time/") && $0.value.isFinite }.values.reduce(0, +) }
            let meanSeconds = stepSeconds.reduce(0, +) / Double(stepSeconds.count)
            if meanSeconds > 0 {
                facts.append(("time", "≈ \(ProgressReporter.duration(meanSeconds * Double(last.step + 1))) (\(String(format: "%.3g", meanSeconds)) s a step)"))
                if let batchSize = (configuration["batchSize"] as? NSNumber)?.doubleValue {
                    facts.append(("speed", String(format: "%.1f images/s (batch %.0f)", batchSize / meanSeconds, batchSize)))
                }
            }
        }
        facts.append(("precision", configuration["precision"] as? String ?? "fp32"))
        facts.append((
            "collapse warnings",
            collapses.isEmpty ? "none"
                : collapses.map { "\($0.name) at steps \($0.firstStep)–\($0.lastStep)" }.joined(separator: "; ")))
        self.facts = facts
    }

    /// The run's `config.json` as a dictionary; empty when the file is missing.
    private static func configuration(in folder: String) throws -> [String: Any] {
        let path = "\(folder)/\(configurationFileName)"
        guard let data = FileManager.default.contents(atPath: path) else { return [:] }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw RunReportError.unreadable(path: path, reason: "not a JSON object; restore it or delete it to report without it")
        }
        return object
    }

    /// The training images in words.
    private static func data(_ configuration: [String: Any]) -> String {
        let data = configuration["data"] as? [String: Any] ?? [:]
        var text = (data["path"] as? String).flatMap { $0.isEmpty ? nil : $0 } ?? "Fashion-MNIST train"
        if let subset = (data["subset"] as? NSNumber)?.intValue, subset > 0 { text += ", a subset of \(subset) images" }
        if let views = configuration["views"] as? [String: Any],
            let globalCount = views["globalCount"] as? NSNumber, let globalSize = views["globalSize"] as? NSNumber {
            text += "; views: \(globalCount) global of \(globalSize) px"
            if let localCount = (views["localCount"] as? NSNumber)?.intValue, localCount > 0, let localSize = views["localSize"] as? NSNumber {
                text += ", \(localCount) local of \(localSize) px"
            }
        }
        return text
    }

    /// The backbone in words, e.g. "ViT 192 × 3 blocks, 3 heads, patch 4, 28 px images".
    private static func architecture(_ backbone: [String: Any]) -> String? {
        guard let width = backbone["embedDimension"] as? NSNumber, let depth = backbone["depth"] as? NSNumber else { return nil }
        var text = "ViT \(width) wide × \(depth) blocks"
        if let heads = backbone["heads"] as? NSNumber { text += ", \(heads) heads" }
        if let patch = backbone["patchSize"] as? NSNumber { text += ", patch \(patch)" }
        if let size = backbone["imageSize"] as? NSNumber { text += ", \(size) px images" }
        return text
    }

    /// The stretches of consecutive logged training steps marked `collapse/<name>`.
    static func collapseStretches(in records: [MetricsRecord]) -> [CollapseStretch] {
        let training = records.filter { $0.values["loss"] != nil }
        let keys = Set(training.flatMap { $0.values.keys.filter { $0.hasPrefix("collapse/") } }).sorted()
        var stretches: [CollapseStretch] = []
        for key in keys {
            var current: CollapseStretch?
            for record in training {
                if record.values[key] != nil {
                    current = current ?? CollapseStretch(name: String(key.dropFirst("collapse/".count)), firstStep: record.step, lastStep: record.step)
                    current!.lastStep = record.step
                } else if let finished = current {
                    stretches.append(finished)
                    current = nil
                }
            }
            if let current { stretches.append(current) }
        }
        return stretches.sorted { ($0.firstStep, $0.name) < ($1.firstStep, $1.name) }
    }
}
