import Foundation

/// A value per training iteration (learning rate, weight decay, teacher momentum, …).
public protocol Schedule: Sendable {
    /// The value at global iteration `iteration` (epoch · iterationsPerEpoch + step).
    func value(at iteration: Int) -> Double
}

/// A stretch of a training run: whole epochs, optimisation steps, or a share of the run.
///
/// The reference recipes count warm-ups and freezes in epochs, which is right for hundreds of
/// epochs and wrong for a run of a few hundred steps, where one epoch may be half the run.
/// Written `10` or `10 epochs`, `500 steps`, `25%`; stored as that text.
public enum TrainingSpan: Sendable, Equatable, Codable, CustomStringConvertible {
    case epochs(Int)
    case steps(Int)
    /// A share of the whole run, from 0 to 1.
    case fraction(Double)

    /// Why a text is not a span.
    public struct ParseError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Parses `10`, `10 epochs`, `1 epoch`, `500 steps`, `1 step` or `25%`.
    public init(parsing text: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
        func count(_ number: Substring) -> Int? {
            Int(number.trimmingCharacters(in: .whitespaces)).flatMap { $0 >= 0 ? $0 : nil }
        }
        if trimmed.hasSuffix("%"), let percent = Double(trimmed.dropLast()), percent >= 0, percent <= 100 {
            self = .fraction(percent / 100)
        } else if let epochs = count(Substring(trimmed)) {
            self = .epochs(epochs)
        } else if let unit = ["epochs", "epoch", "steps", "step"].first(where: { trimmed.hasSuffix($0) }),
            let number = count(trimmed.dropLast(unit.count))
        {
            self = unit.hasPrefix("epoch") ? .epochs(number) : .steps(number)
        } else {
            throw ParseError(
                description: "'\(text)' is not a span of training: write epochs (10 or 10 epochs), steps (500 steps) "
                    + "or a share of the run (25%).")
        }
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let epochs = try? container.decode(Int.self) {
            guard epochs >= 0 else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "a span of \(epochs) epochs is negative")
            }
            self = .epochs(epochs)
            return
        }
        let text = try container.decode(String.self)
        do {
            self = try TrainingSpan(parsing: text)
        } catch let error as ParseError {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.description)
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    public var description: String {
        switch self {
        case .epochs(let count): count == 1 ? "1 epoch" : "\(count) epochs"
        case .steps(let count): count == 1 ? "1 step" : "\(count) steps"
        case .fraction(let share): "\((share * 100).shortestText)%"
        }
    }

    /// The number of iterations the span covers in a run of `epochs` × `iterationsPerEpoch`,
    /// at most the whole run.
    public func iterations(epochs: Int, iterationsPerEpoch: Int) -> Int {
        let total = epochs * iterationsPerEpoch
        switch self {
        case .epochs(let count): return min(count, epochs) * iterationsPerEpoch
        case .steps(let count): return min(count, total)
        case .fraction(let share): return min(Int((share * Double(total)).rounded()), total)
        }
    }
}

extension Double {
    /// The value without a fractional part when it has none (`25`, `2.5`).
    var shortestText: String {
        self == rounded() && abs(self) < 1e15 ? String(Int(self)) : String(self)
    }
}

/// How a linear warm-up reaches its peak.
public enum WarmupRamp: String, Codable, Sendable {
    /// `numpy.linspace(start, base, W)`: the last warm-up iteration already takes `base`
    /// (DINO's `utils.cosine_scheduler`).
    case inclusive
    /// `start + (base − start) · j / W`: `base` is reached at the first iteration after the
    /// warm-up (MoCo v3's `adjust_learning_rate` in `main_moco.py`).
    case exclusive
}

/// DINO's cosine schedule: a linear warm-up from `start` to `base` over the first
/// `warmupIterations`, then a half cosine from `base` to `final` over the rest.
///
/// Values are computed in double precision exactly as `dino.utils.cosine_scheduler` does, so
/// with an inclusive ramp `base` appears twice at the warm-up boundary and the last value
/// stays just above `final`.
public struct CosineSchedule: Schedule, Equatable {
    public var base: Double
    public var final: Double
    /// The number of iterations the schedule covers.
    public var count: Int
    public var warmupIterations: Int
    public var start: Double
    public var ramp: WarmupRamp

    /// A schedule over `iterations` steps whose first `warmupIterations` (at most all of them)
    /// rise linearly from `start`.
    public init(
        base: Double, final: Double, iterations: Int, warmupIterations: Int = 0, start: Double = 0,
        ramp: WarmupRamp = .inclusive
    ) {
        self.base = base
        self.final = final
        self.count = max(iterations, 1)
        self.warmupIterations = min(max(warmupIterations, 0), count)
        self.start = start
        self.ramp = ramp
    }

    /// DINO's `cosine_scheduler(base, final, epochs, niter_per_ep, warmup_epochs, start)`.
    public init(
        base: Double, final: Double, epochs: Int, iterationsPerEpoch: Int, warmupEpochs: Int = 0, start: Double = 0
    ) {
        self.init(
            base: base, final: final, iterations: epochs * iterationsPerEpoch,
            warmupIterations: warmupEpochs * iterationsPerEpoch, start: start)
    }

    public func value(at iteration: Int) -> Double {
        let warmup = warmupIterations
        let clamped = min(max(iteration, 0), count - 1)
        if clamped < warmup {
            switch ramp {
            case .inclusive:
                if warmup == 1 { return start }
                let step = (base - start) / Double(warmup - 1)
                return clamped == warmup - 1 ? base : start + Double(clamped) * step
            case .exclusive:
                return start + (base - start) * Double(clamped) / Double(warmup)
            }
        }
        let j = Double(clamped - warmup), span = Double(count - warmup)
        return final + 0.5 * (base - final) * (1 + cos(.pi * j / span))
    }

    /// Every value of the schedule.
    public var values: [Double] { (0..<count).map(value(at:)) }
}

/// A value that rises linearly from `start` to `final` (endpoint included) and then holds:
/// DINO's teacher temperature.
///
/// A warm-up given in epochs steps once per epoch, as DINO's per-epoch
/// `teacher_temp_schedule`; one given in steps or as a share of the run rises every step.
public struct LinearWarmupSchedule: Schedule, Equatable {
    public var start: Double
    public var final: Double
    /// The warm-up's length in units of ``unitIterations``.
    public var warmupUnits: Int
    /// Iterations per step of the ramp: an epoch's, or 1.
    public var unitIterations: Int

    /// A warm-up of `span` in a run of `epochs` × `iterationsPerEpoch`.
    public init(start: Double, final: Double, span: TrainingSpan, epochs: Int, iterationsPerEpoch: Int) {
        self.start = start
        self.final = final
        if case .epochs(let count) = span {
            warmupUnits = count
            unitIterations = max(iterationsPerEpoch, 1)
        } else {
            warmupUnits = span.iterations(epochs: epochs, iterationsPerEpoch: iterationsPerEpoch)
            unitIterations = 1
        }
    }

    public func value(at iteration: Int) -> Double {
        let unit = max(iteration, 0) / unitIterations
        guard unit < warmupUnits else { return final }
        if warmupUnits == 1 { return start }
        return unit == warmupUnits - 1 ? final : start + Double(unit) * (final - start) / Double(warmupUnits - 1)
    }
}
