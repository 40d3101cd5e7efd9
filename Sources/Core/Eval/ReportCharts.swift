import Foundation

/// The curves of a run report grouped by meaning: the losses, the health indicators with their
/// danger zones and collapse warnings, the schedules, the online probes beside their baselines,
/// the time per phase, then anything else. A series that never changes becomes a line of text.
struct ReportCharts {
    /// A titled group of charts.
    struct Section {
        var title: String
        /// What the charts show, one sentence.
        var note: String
        /// Inline SVG charts.
        var charts: [String]
        /// One line of text per series that never changes.
        var constants: [String]
    }

    /// The runs drawn, each with its description; every chart overlays the runs.
    var runs: [(run: RunReport.LoadedRun, description: RunDescription)]

    /// The sections that have something to show, in reading order.
    func sections() -> [Section] {
        let keys = Set(runs.flatMap { $0.run.records.flatMap(\.values.keys) }).filter { !$0.hasPrefix("collapse/") }
        let plots = plans(for: keys)
        return Kind.allCases.compactMap { kind in
            var charts: [String] = [], constants: [String] = []
            for plot in plots where plot.kind == kind {
                let (chart, lines) = render(plot)
                if let chart { charts.append(chart) }
                constants += lines
            }
            guard !charts.isEmpty || !constants.isEmpty else { return nil }
            return Section(title: kind.title, note: kind.note, charts: charts, constants: constants)
        }
    }

    /// The meaning of a group of curves, in reading order.
    enum Kind: CaseIterable {
        case losses, health, schedules, probes, time, other

        var title: String {
            switch self {
            case .losses: "Losses"
            case .health: "Health"
            case .schedules: "Schedules"
            case .probes: "Online probes"
            case .time: "Time per step"
            case .other: "Other values"
            }
        }

        var note: String {
            switch self {
            case .losses: "The total loss, each task's loss, and each task's other terms."
            case .health: "Signs of collapse. Red bands: where an indicator means collapse (the bounds the run warns at); "
                + "orange: the steps at which the run warned of a collapse."
            case .schedules: "The values the recipe sets step by step."
            case .probes: "Probes during training: the trained backbone beside a randomly initialised one and raw pixels."
            case .time: "Seconds per logged step, by phase, stacked: the top line is the whole step."
            case .other: "Everything else the run logged, grouped by the part of the name before the first '/'."
            }
        }
    }

    /// One chart to draw: which values, how, and where.
    struct Plot {
        var kind: Kind
        var title: String
        /// The values drawn, each with its legend name.
        var lines: [(key: String, label: String)]
        var bands: [SVGLineChart.Shading] = []
        /// Which of the runs' collapse warnings are shaded.
        var marksCollapse: (RunDescription.CollapseStretch) -> Bool = { _ in false }
        var style = SVGLineChart.Style.lines
        /// Draw a series that never changes too (a baseline beside one that does, a part of a whole).
        var keepsConstantLines = false
    }

    /// The charts for `keys`, each key in one of them.
    func plans(for keys: Set<String>) -> [Plot] {
        var remaining = keys
        var plots: [Plot] = []
        func take(_ wanted: [(key: String, label: String)]) -> [(key: String, label: String)] {
            wanted.filter { remaining.remove($0.key) != nil }
        }
        func add(_ plot: Plot) {
            var plot = plot
            plot.lines = take(plot.lines)
            if !plot.lines.isEmpty { plots.append(plot) }
        }
        let tasks = taskNames(keys)
        add(Plot(kind: .losses, title: "loss", lines: [("loss", "total")] + tasks.map { ("\($0).loss", $0) }, marksCollapse: { _ in true }))
        for task in tasks {
            let prototypes = runs.lazy.compactMap { $0.description.tasks.first { $0.name == task }?.prototypeCount }.first
            let logK = prototypes.map { log(Double($0)) }
            add(Plot(
                kind: .health, title: "\(task): teacher entropy", lines: [("\(task).teacher_entropy", "entropy")],
                bands: logK.map { [.init(range: 0.97 * $0...$0, label: "uniform: ≥ 0.97·log K (K = \(prototypes!))")] } ?? [],
                marksCollapse: { $0.name == "\(task).\(CollapseMonitor.Indicator.uniformTeacher.rawValue)" }))
            add(Plot(
                kind: .health, title: "\(task): teacher KL to uniform", lines: [("\(task).teacher_kl_uniform", "KL")],
                bands: logK.map { [.init(range: 0.9 * $0...$0, label: "one prototype: ≥ 0.9·log K")] } ?? [],
                marksCollapse: { $0.name == "\(task).\(CollapseMonitor.Indicator.singlePrototype.rawValue)" }))
            let dimension = runs.lazy.compactMap(\.description.embedDimension).first
            add(Plot(
                kind: .health, title: "\(task): embedding spread", lines: [("\(task).embedding_std", "spread")],
                bands: dimension.map { [.init(range: 0...(0.2 / Double($0).squareRoot()), label: "vanishing: < 0.2/√\($0)")] } ?? [],
                marksCollapse: { $0.name == "\(task).\(CollapseMonitor.Indicator.vanishingSpread.rawValue)" }))
        }
        add(Plot(
            kind: .health, title: "gradient norms",
            lines: [("backbone_gradient_norm", "backbone")] + tasks.map { ("\($0).backbone_gradient_norm", "\($0) → backbone") }))
        for (key, title) in [("lr", "learning rate"), ("weight_decay", "weight decay"), ("teacher_momentum", "teacher momentum")] {
            add(Plot(kind: .schedules, title: title, lines: [(key, key)]))
        }
        for task in tasks {
            add(Plot(kind: .schedules, title: "\(task): teacher temperature", lines: [("\(task).teacher_temperature", "temperature")]))
            add(Plot(kind: .schedules, title: "\(task): weight", lines: [("\(task).weight", "weight")]))
        }
        for task in tasks {
            let terms = remaining.filter { $0.hasPrefix("\(task).") }.sorted(by: SummaryTable.naturalOrder)
            add(Plot(kind: .losses, title: "\(task): other terms", lines: terms.map { ($0, String($0.dropFirst(task.count + 1))) }))
        }
        let probes = Set(remaining.filter { $0.hasPrefix("online/") }.map { String($0.dropFirst("online/".count)) })
        for probe in probes.sorted(by: SummaryTable.naturalOrder) {
            add(Plot(
                kind: .probes, title: probe,
                lines: [("online/\(probe)", "trained"), ("online_random/\(probe)", "random"), ("online_pixels/\(probe)", "pixels")],
                keepsConstantLines: true))
        }
        let phases = remaining.filter { $0.hasPrefix("time/") }.sorted()
        add(Plot(kind: .time, title: "seconds per step", lines: phases.map { ($0, String($0.dropFirst(5))) }, style: .stackedAreas,
            keepsConstantLines: true))
        for (group, members) in Dictionary(grouping: remaining, by: { $0.split(separator: "/").first.map(String.init) ?? $0 })
            .sorted(by: { $0.key < $1.key }) {
            add(Plot(kind: .other, title: group, lines: members.sorted(by: SummaryTable.naturalOrder).map { ($0, $0) }))
        }
        return plots
    }

    /// The tasks of the runs: those their configurations name, and any that logged `<task>.loss`.
    private func taskNames(_ keys: Set<String>) -> [String] {
        var names = runs.flatMap { $0.description.tasks.map(\.name) }
        names += keys.filter { $0.hasSuffix(".loss") }.map { String($0.dropLast(".loss".count)) }.sorted()
        var seen: Set<String> = []
        return names.filter { seen.insert($0).inserted }
    }

    /// The chart of `plot` (nil when every series is constant) and a line of text per
    /// constant series left out of it.
    private func render(_ plot: Plot) -> (chart: String?, constants: [String]) {
        var series: [SVGLineChart.Series] = [], constants: [String] = []
        for (run, _) in runs {
            for line in plot.lines {
                let points = run.records.compactMap { record in record.values[line.key].map { (x: Double(record.step), y: $0) } }
                guard !points.isEmpty else { continue }
                let name = runs.count > 1 ? "\(run.summary.name): \(line.label)" : line.label
                let finite = Set(points.map(\.y).filter(\.isFinite))
                if finite.count == 1 && points.allSatisfy({ $0.y.isFinite }) && !plot.keepsConstantLines {
                    let owner = runs.count > 1 ? " (\(run.summary.name))" : ""
                    constants.append("\(line.key)\(owner) = \(SummaryTable.formatted(finite.first!)) throughout (\(points.count) logged values)")
                } else {
                    series.append(.init(name: name, points: points))
                }
            }
        }
        guard !series.isEmpty else { return (nil, constants) }
        var chart = SVGLineChart(title: plot.title, series: series, width: 440, height: 260)
        chart.bands = plot.bands
        chart.style = plot.style
        for (run, description) in runs {
            for stretch in description.collapses where plot.marksCollapse(stretch) {
                let owner = runs.count > 1 ? "\(run.summary.name): " : ""
                chart.spans.append(.init(range: Double(stretch.firstStep)...Double(stretch.lastStep), label: owner + stretch.name))
            }
        }
        return (chart.render(), constants)
    }
}
