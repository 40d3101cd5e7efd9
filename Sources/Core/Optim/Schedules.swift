#if canImport(Glibc)
import Glibc
#endif

/// A value per training iteration (learning rate, weight decay, teacher momentum, …).
public protocol Schedule: Sendable {
    /// The value at global iteration `iteration` (epoch · iterationsPerEpoch + step).
    func value(at iteration: Int) -> Double
}

/// DINO's cosine schedule: a linear warm-up from `start` to `base` over the first warm-up
/// epochs (the endpoint included), then a half cosine from `base` to `final`.
///
/// Values are computed in double precision exactly as `dino.utils.cosine_scheduler` does, so
/// `base` appears twice at the warm-up boundary and the last value stays just above `final`.
public struct CosineSchedule: Schedule, Codable, Equatable {
    public var base: Double
    public var final: Double
    public var epochs: Int
    public var iterationsPerEpoch: Int
    public var warmupEpochs: Int
    public var start: Double

    public init(
        base: Double, final: Double, epochs: Int, iterationsPerEpoch: Int, warmupEpochs: Int = 0,
        start: Double = 0
    ) {
        precondition(epochs > 0 && iterationsPerEpoch > 0, "CosineSchedule needs at least one epoch and one iteration.")
        precondition(
            warmupEpochs <= epochs,
            "CosineSchedule: \(warmupEpochs) warm-up epochs exceed the \(epochs) epochs of training.")
        self.base = base
        self.final = final
        self.epochs = epochs
        self.iterationsPerEpoch = iterationsPerEpoch
        self.warmupEpochs = warmupEpochs
        self.start = start
    }

    /// The number of iterations the schedule covers.
    public var count: Int { epochs * iterationsPerEpoch }

    public func value(at iteration: Int) -> Double {
        let warmup = warmupEpochs * iterationsPerEpoch
        let clamped = min(max(iteration, 0), count - 1)
        if clamped < warmup {
            // numpy.linspace(start, base, warmup): endpoint included.
            if warmup == 1 { return start }
            let step = (base - start) / Double(warmup - 1)
            return clamped == warmup - 1 ? base : start + Double(clamped) * step
        }
        let j = Double(clamped - warmup), span = Double(count - warmup)
        return final + 0.5 * (base - final) * (1 + cos(.pi * j / span))
    }

    /// Every value of the schedule.
    public var values: [Double] { (0..<count).map(value(at:)) }
}

/// A per-epoch schedule that rises linearly over `warmupEpochs` (endpoint included) and then
/// holds: DINO's teacher temperature.
public struct LinearWarmupSchedule: Codable, Equatable, Sendable {
    public var start: Double
    public var final: Double
    public var warmupEpochs: Int

    public init(start: Double, final: Double, warmupEpochs: Int) {
        self.start = start
        self.final = final
        self.warmupEpochs = warmupEpochs
    }

    /// The value during `epoch`.
    public func value(atEpoch epoch: Int) -> Double {
        guard epoch < warmupEpochs else { return final }
        if warmupEpochs == 1 { return start }
        return epoch == warmupEpochs - 1 ? final : start + Double(epoch) * (final - start) / Double(warmupEpochs - 1)
    }
}
