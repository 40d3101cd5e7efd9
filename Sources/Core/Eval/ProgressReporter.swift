import Foundation

/// Reports the progress of long work (training, feature extraction, probes): epoch, step,
/// images per second, time left and the current loss.
///
/// On a terminal it redraws one progress-bar line in place (at most ten times a second); when
/// the output is a file or a pipe (CI, logs) it prints a plain line every ``logInterval``
/// seconds and at the last step:
///
///     train epoch 2/10 step 120/1000 (12.0%) 41.3 img/s ETA 0:05:12 loss 5.9312
public final class ProgressReporter {
    /// How the progress is drawn.
    public enum Style: Sendable {
        /// One line redrawn in place with a carriage return.
        case bar
        /// Independent lines, one per ``ProgressReporter/logInterval``.
        case lines
    }

    /// The label at the start of every line.
    public let title: String
    /// The number of steps of the whole work.
    public let totalSteps: Int
    /// The number of epochs, when the work has epochs.
    public let totalEpochs: Int?
    /// The drawing style.
    public let style: Style
    /// Seconds between two plain lines (``Style/lines``).
    public var logInterval: Double

    private let write: (String) -> Void
    private let clock: () -> Double
    private let start: Double
    private var lastDrawn: Double?
    private var lastLine = ""
    private var finished = false

    /// A reporter writing to standard error, as a bar when standard error is a terminal.
    public convenience init(title: String, totalSteps: Int, totalEpochs: Int? = nil, logInterval: Double = 30) {
        self.init(
            title: title, totalSteps: totalSteps, totalEpochs: totalEpochs,
            style: isatty(STDERR_FILENO) != 0 ? .bar : .lines, logInterval: logInterval,
            write: { text in FileHandle.standardError.write(Data(text.utf8)) },
            clock: { MonotonicClock.seconds })
    }

    /// A reporter with an explicit style, output and clock (seconds), e.g. for tests.
    public init(
        title: String, totalSteps: Int, totalEpochs: Int? = nil, style: Style, logInterval: Double = 30,
        write: @escaping (String) -> Void, clock: @escaping () -> Double
    ) {
        precondition(totalSteps >= 1, "ProgressReporter: totalSteps must be positive.")
        self.title = title
        self.totalSteps = totalSteps
        self.totalEpochs = totalEpochs
        self.style = style
        self.logInterval = logInterval
        self.write = write
        self.clock = clock
        start = clock()
    }

    /// Records that `step` of ``totalSteps`` steps are done and `images` images processed
    /// since the start, and redraws when due.
    ///
    /// - Parameters:
    ///   - epoch: the current epoch, counted from 0 (shown from 1).
    ///   - loss: the latest loss, if any.
    public func update(step: Int, images: Int, epoch: Int? = nil, loss: Double? = nil) {
        let now = clock()
        let last = step >= totalSteps
        switch style {
        case .bar:
            guard last || lastDrawn.map({ now - $0 >= 0.1 }) ?? true else { return }
            lastLine = line(step: step, images: images, epoch: epoch, loss: loss, elapsed: now - start, bar: true)
            write("\r\u{1B}[2K" + lastLine)
        case .lines:
            guard last || now - (lastDrawn ?? start) >= logInterval else { return }
            lastLine = line(step: step, images: images, epoch: epoch, loss: loss, elapsed: now - start, bar: false)
            write(lastLine + "\n")
        }
        lastDrawn = now
    }

    /// Whether a report has been drawn yet.
    public var hasDrawn: Bool { lastDrawn != nil }

    /// Writes `text` as a line of its own; a bar is cleared first and redrawn below it.
    public func note(_ text: String) {
        switch style {
        case .bar: write("\r\u{1B}[2K" + text + "\n" + lastLine)
        case .lines: write(text + "\n")
        }
    }

    /// Ends the report: the bar's line is closed with a newline. Calling it again does nothing.
    public func finish() {
        guard !finished else { return }
        finished = true
        if style == .bar && !lastLine.isEmpty { write("\n") }
    }

    /// The text of one report.
    func line(step: Int, images: Int, epoch: Int?, loss: Double?, elapsed: Double, bar: Bool) -> String {
        var parts = [title]
        if let epoch {
            parts.append("epoch \(epoch + 1)" + (totalEpochs.map { "/\($0)" } ?? ""))
        }
        let fraction = min(max(Double(step) / Double(totalSteps), 0), 1)
        let percent = String(format: "%.1f%%", 100 * fraction)
        if bar {
            let width = 24, filled = Int((fraction * Double(width)).rounded(.down))
            parts.append("[" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled) + "]")
            parts.append("\(step)/\(totalSteps) \(percent)")
        } else {
            parts.append("step \(step)/\(totalSteps) (\(percent))")
        }
        parts.append(elapsed > 0 ? String(format: "%.1f img/s", Double(images) / elapsed) : "– img/s")
        let remaining = step > 0 ? elapsed / Double(step) * Double(max(totalSteps - step, 0)) : nil
        parts.append("ETA " + (remaining.map(Self.duration) ?? "–"))
        if let loss { parts.append(String(format: "loss %.4f", loss)) }
        return parts.joined(separator: " ")
    }

    /// `seconds` as h:mm:ss.
    static func duration(_ seconds: Double) -> String {
        let total = Int(seconds.rounded())
        return String(format: "%d:%02d:%02d", total / 3600, total / 60 % 60, total % 60)
    }
}
