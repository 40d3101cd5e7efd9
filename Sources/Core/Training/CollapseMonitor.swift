import Foundation

/// Watches the tasks' health step by step and says when training has collapsed, once per
/// stretch: a teacher that stays near uniform, a teacher that puts every image on one
/// prototype, or embeddings that shrink to a point.
///
/// An indicator must stay past its bound for ``patience`` consecutive steps before it is
/// reported, so the noise of a single batch does not raise a warning; it can be reported
/// again after it has recovered.
public struct CollapseMonitor {
    /// A kind of collapse.
    public enum Indicator: String, Sendable, CaseIterable {
        /// Mean per-sample teacher entropy at least 97 % of log K: every target is nearly flat.
        case uniformTeacher = "uniform_teacher"
        /// KL of the batch-mean teacher distribution to uniform at least 90 % of log K: the
        /// batch uses about K^0.1 prototypes or fewer (2 of 1,024).
        case singlePrototype = "single_prototype"
        /// Embedding spread below a fifth of the well-spread 1/√dim.
        case vanishingSpread = "vanishing_spread"
    }

    /// A collapse that has lasted ``CollapseMonitor/patience`` steps.
    public struct Warning: Sendable, Equatable, CustomStringConvertible {
        public var task: String
        public var indicator: Indicator
        /// The first step of the stretch.
        public var firstStep: Int
        /// The step at which the stretch reached the patience.
        public var step: Int
        /// The indicator's reading at ``step`` and what it is compared with, as text.
        public var reading: String

        /// The metrics key that marks the collapsed stretch: `collapse/<task>.<indicator>`.
        public var metricsKey: String { "collapse/\(task).\(indicator.rawValue)" }

        /// One line: what collapsed, since when, the reading, and what usually helps.
        public var description: String {
            let steps = step - firstStep + 1
            switch indicator {
            case .uniformTeacher:
                return "Warning: \(task)'s teacher has been nearly uniform for \(steps) steps (since step \(firstStep); \(reading)), "
                    + "so its targets carry no information. What usually helps: a sharper teacher (a lower teacher "
                    + "temperature, --\(task).teacher-temp), a lower --lr, or a higher --teacher-momentum."
            case .singlePrototype:
                return "Warning: \(task)'s teacher has put every image on the same few prototypes for \(steps) steps (since step "
                    + "\(firstStep); \(reading)). What usually helps: a softer teacher (a higher --\(task).teacher-temp), "
                    + "faster centring (a lower --\(task).center-momentum), or a lower --lr."
            case .vanishingSpread:
                return "Warning: \(task)'s embeddings have shrunk towards one point for \(steps) steps (since step \(firstStep); "
                    + "\(reading)). What usually helps: a lower --lr, a higher --teacher-momentum, or a spreading "
                    + "regulariser beside the task."
            }
        }
    }

    /// Consecutive steps past a bound before a warning.
    public let patience: Int
    /// Where each indicator's current stretch began, by `task/indicator`.
    private var stretchStarts: [String: Int] = [:]
    /// The stretches already reported.
    private var reported: Set<String> = []

    public init(patience: Int) {
        self.patience = max(patience, 1)
    }

    /// A patience that suits a run of `steps` steps: 5 % of it, between 10 and 100 steps.
    public static func patience(forRunOf steps: Int) -> Int { min(100, max(10, steps / 20)) }

    /// Each indicator `health` reports, whether it is past its bound, and its reading as text.
    public static func readings(_ health: TaskHealth) -> [Indicator: (collapsed: Bool, reading: String)] {
        var result: [Indicator: (Bool, String)] = [:]
        if let teacher = health.teacher {
            let bound = teacher.maximumEntropy
            result[.uniformTeacher] = (
                teacher.entropy >= 0.97 * bound,
                "entropy \(rounded(teacher.entropy)) of log K = \(rounded(bound))")
            result[.singlePrototype] = (
                teacher.klDivergenceToUniform >= 0.9 * bound,
                "KL to uniform \(rounded(teacher.klDivergenceToUniform)) of log K = \(rounded(bound))")
        }
        if let spread = health.embeddingSpread {
            result[.vanishingSpread] = (
                spread.standardDeviation < 0.2 * spread.wellSpread,
                "spread \(rounded(spread.standardDeviation)), well spread is 1/√\(spread.dimension) = \(rounded(spread.wellSpread))")
        }
        return result
    }

    /// Records the health of `step` and returns the collapses that have just lasted
    /// ``patience`` steps.
    public mutating func observe(_ health: [String: TaskHealth], step: Int) -> [Warning] {
        var warnings: [Warning] = []
        for (task, taskHealth) in health.sorted(by: { $0.key < $1.key }) {
            for (indicator, state) in Self.readings(taskHealth).sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
                let key = "\(task)/\(indicator.rawValue)"
                guard state.collapsed else {
                    stretchStarts[key] = nil
                    reported.remove(key)
                    continue
                }
                let first = stretchStarts[key] ?? step
                stretchStarts[key] = first
                if step - first + 1 >= patience && !reported.contains(key) {
                    reported.insert(key)
                    warnings.append(Warning(task: task, indicator: indicator, firstStep: first, step: step, reading: state.reading))
                }
            }
        }
        return warnings
    }

    /// The stretches reported and still going on, as their metrics keys.
    public var ongoingCollapses: [String] {
        reported.sorted().map { key in
            let parts = key.split(separator: "/")
            return "collapse/\(parts[0]).\(parts[1])"
        }
    }

    /// Three significant digits.
    private static func rounded(_ value: Double) -> String { String(format: "%.3g", value) }
}
