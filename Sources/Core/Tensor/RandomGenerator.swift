#if canImport(Glibc)
import Glibc
#endif

/// A seeded, splittable pseudo-random generator (xoshiro256**), so that every random draw of a
/// run follows from its seed.
public struct RandomGenerator: RandomNumberGenerator, Sendable {
    private var state: (UInt64, UInt64, UInt64, UInt64)

    /// A generator whose stream is determined by `seed`.
    public init(seed: UInt64) {
        var mixer = seed
        func next() -> UInt64 {
            // SplitMix64 spreads the seed's bits over the whole state.
            mixer &+= 0x9E37_79B9_7F4A_7C15
            var z = mixer
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        state = (next(), next(), next(), next())
    }

    /// A generator for a sub-stream identified by `path`, independent of how many numbers were
    /// drawn elsewhere: e.g. `RandomGenerator(seed: seed, path: [epoch, sample])`.
    public init(seed: UInt64, path: [UInt64]) {
        var key = seed
        for component in path {
            var generator = RandomGenerator(seed: key ^ (component &* 0xD6E8_FEB8_6659_FD93))
            key = generator.next()
        }
        self.init(seed: key)
    }

    /// The raw state, for checkpoints.
    public var stateWords: [UInt64] { [state.0, state.1, state.2, state.3] }

    /// Restores a state saved from ``stateWords``.
    public init(stateWords words: [UInt64]) {
        precondition(words.count == 4, "A RandomGenerator state has 4 words, got \(words.count).")
        state = (words[0], words[1], words[2], words[3])
    }

    public mutating func next() -> UInt64 {
        let result = ((state.1 &* 5) << 7 | (state.1 &* 5) >> 57) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = state.3 << 45 | state.3 >> 19
        return result
    }

    /// A uniform draw from [0, 1) with 24 random bits.
    public mutating func nextUniform() -> Float {
        Float(next() >> 40) * 0x1p-24
    }

    /// A uniform draw from [0, 1) with 53 random bits.
    public mutating func nextUniformDouble() -> Double {
        Double(next() >> 11) * 0x1p-53
    }

    /// A standard normal draw (Box–Muller).
    public mutating func nextNormal() -> Double {
        let u1 = max(nextUniformDouble(), .leastNonzeroMagnitude)
        let u2 = nextUniformDouble()
        return (-2 * Glibc.log(u1)).squareRoot() * cos(2 * .pi * u2)
    }
}

extension Tensor {
    /// Elements drawn from N(mean, standardDeviation²).
    public static func randomNormal(
        _ shape: [Int], mean: Float = 0, standardDeviation: Float = 1, generator: inout RandomGenerator
    ) -> Tensor {
        let result = Tensor(uninitializedShape: shape)
        for i in 0..<result.count {
            result.storage.base[i] = mean + standardDeviation * Float(generator.nextNormal())
        }
        return result
    }

    /// Elements drawn from N(mean, standardDeviation²) restricted to [lower, upper] by
    /// rejection, as `torch.nn.init.trunc_normal_` defines it.
    public static func truncatedNormal(
        _ shape: [Int], mean: Float = 0, standardDeviation: Float, lower: Float = -2, upper: Float = 2,
        generator: inout RandomGenerator
    ) -> Tensor {
        let result = Tensor(uninitializedShape: shape)
        for i in 0..<result.count {
            var value: Float
            repeat {
                value = mean + standardDeviation * Float(generator.nextNormal())
            } while value < lower || value > upper
            result.storage.base[i] = value
        }
        return result
    }

    /// Elements drawn uniformly from [lower, upper).
    public static func randomUniform(
        _ shape: [Int], lower: Float, upper: Float, generator: inout RandomGenerator
    ) -> Tensor {
        let result = Tensor(uninitializedShape: shape)
        for i in 0..<result.count {
            result.storage.base[i] = lower + (upper - lower) * generator.nextUniform()
        }
        return result
    }
}

extension RandomGenerator {
    /// The first element of the path (``init(seed:path:)``) of each of Core's independent streams
    /// drawn from a run's seed, kept in one place so that no two share one. The values are
    /// arbitrary hexadecimal tags, far from the epoch numbers that begin the data loader's
    /// paths; changing one changes every run that draws from it. A plugin names its own
    /// streams beside their use.
    public enum Stream {
        /// The seeded subset of the training images (`--subset`).
        public static let trainingSubset: UInt64 = 0x5B5E7
        /// The shuffle that picks the probes' labelled images.
        public static let probeImages: UInt64 = 0xE7A1
        /// A backbone's stochastic depth, independent of how many numbers its initialisation drew.
        public static let stochasticDepth: UInt64 = 0xD509
    }
}
