import Foundation

/// A task's loss weight over a run: a constant, or values at points of the run joined by
/// straight lines (held flat before the first point and after the last).
///
/// Written `0.1` for a constant, or as `value@position` points separated by colons, each
/// position a ``TrainingSpan`` from the start of the run: `1@0:0.1@100%` falls linearly from 1
/// to 0.1 over the whole run, `0@0:0.1@500 steps` brings a task in over its first 500 steps.
/// Stored in a recipe as a number when constant and as that text otherwise.
public struct TaskWeight: Sendable, Equatable, Codable, CustomStringConvertible, ExpressibleByFloatLiteral,
    ExpressibleByIntegerLiteral
{
    /// The weight at one point of the run.
    public struct Point: Sendable, Equatable {
        public var value: Double
        public var position: TrainingSpan

        public init(value: Double, position: TrainingSpan) {
            self.value = value
            self.position = position
        }
    }

    /// Why a text is not a weight.
    public struct ParseError: Error, CustomStringConvertible {
        public var description: String
    }

    /// The points, in the order they were given; one point at the start for a constant.
    public private(set) var points: [Point]

    /// A weight that never changes.
    public init(_ constant: Double) {
        points = [Point(value: constant, position: .steps(0))]
    }

    public init(floatLiteral value: Double) { self.init(value) }
    public init(integerLiteral value: Int) { self.init(Double(value)) }

    /// A weight through `points`, which must be non-empty with finite values ≥ 0.
    public init(points: [Point]) throws {
        guard !points.isEmpty else { throw ParseError(description: "a weight schedule needs at least one point") }
        if let bad = points.first(where: { !$0.value.isFinite || $0.value < 0 }) {
            throw ParseError(description: "a weight must be a finite number ≥ 0, got \(bad.value)")
        }
        self.points = points
    }

    /// Parses `0.1` or `value@position` points separated by colons (`1@0:0.1@100%`).
    public init(parsing text: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if let constant = Double(trimmed) {
            try self.init(points: [Point(value: constant, position: .steps(0))])
            return
        }
        let points = try trimmed.split(separator: ":", omittingEmptySubsequences: false).map { item -> Point in
            let parts = item.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, let value = Double(parts[0].trimmingCharacters(in: .whitespaces)) else {
                throw ParseError(
                    description: "'\(text)' is not a weight: write a number (0.1) or value@position points separated "
                        + "by colons (1@0:0.1@100%, 0@0:0.1@500 steps)")
            }
            do {
                return Point(value: value, position: try TrainingSpan(parsing: String(parts[1])))
            } catch let error as TrainingSpan.ParseError {
                throw ParseError(description: "in the weight '\(text)': \(error.description)")
            }
        }
        try self.init(points: points)
    }

    /// The value when the weight never changes.
    public var constant: Double? {
        Set(points.map(\.value)).count == 1 ? points[0].value : nil
    }

    /// The largest value the weight takes.
    public var maximum: Double { points.map(\.value).max()! }

    public var description: String {
        if let constant { return constant.shortestText }
        return points.map { "\($0.value.shortestText)@\($0.position)" }.joined(separator: ":")
    }

    /// The weight per iteration of a run of `epochs` × `iterationsPerEpoch`.
    ///
    /// - Throws: ``ParseError`` when the points' positions go backwards in this run.
    public func schedule(epochs: Int, iterationsPerEpoch: Int) throws -> PiecewiseLinearSchedule {
        let knots = points.map {
            (iteration: $0.position.iterations(epochs: epochs, iterationsPerEpoch: iterationsPerEpoch), value: $0.value)
        }
        for (previous, next) in zip(knots, knots.dropFirst()) where next.iteration < previous.iteration {
            throw ParseError(
                description: "the points of '\(description)' go backwards (iteration \(next.iteration) after "
                    + "\(previous.iteration) in this run of \(epochs * iterationsPerEpoch) iterations); order them by position")
        }
        return PiecewiseLinearSchedule(knots: knots)
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        do {
            if let constant = try? container.decode(Double.self) {
                try self.init(points: [Point(value: constant, position: .steps(0))])
            } else {
                try self.init(parsing: try container.decode(String.self))
            }
        } catch let error as ParseError {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.description)
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        if let constant { try container.encode(constant) } else { try container.encode(description) }
    }
}

/// Values at iterations joined by straight lines, held flat before the first and after the last.
public struct PiecewiseLinearSchedule: Schedule, Equatable {
    /// The iterations, in non-decreasing order, and the values there.
    public var iterations: [Int]
    public var values: [Double]

    /// A schedule through `knots`, whose iterations must not decrease.
    public init(knots: [(iteration: Int, value: Double)]) {
        precondition(!knots.isEmpty && zip(knots, knots.dropFirst()).allSatisfy { $0.iteration <= $1.iteration })
        iterations = knots.map(\.iteration)
        values = knots.map(\.value)
    }

    public func value(at iteration: Int) -> Double {
        guard let next = iterations.firstIndex(where: { $0 > iteration }) else { return values.last! }
        guard next > 0 else { return values[0] }
        let (start, end) = (iterations[next - 1], iterations[next])
        let share = Double(iteration - start) / Double(end - start)
        return values[next - 1] + share * (values[next] - values[next - 1])
    }
}
