import Foundation

/// The progress of an ``EvaluationSuite``'s probes, stage by stage (feature passes, k-NN,
/// retrieval, linear probes), one line per stage.
///
/// On a terminal the stage's line is drawn while it runs (a ``ProgressReporter`` bar when it
/// has steps) and replaced by its name and the seconds it took when it ends. When the output is
/// a file or a pipe, a stage with steps writes its reporter's plain lines (one every 30 s, and
/// at the end), any other stage a line with its seconds when it ends:
///
///     trained: features of 10000 train images step 157/157 (100.0%) 412.3 img/s ETA 0:00:00
///     trained: k-NN: 3.1 s
public final class ProbeProgress {
    /// How the reporters are drawn (a bar on a terminal).
    public let style: ProgressReporter.Style
    private let write: (String) -> Void
    private let clock: () -> Double

    /// Progress written to standard error, drawn as bars when standard error is a terminal.
    public convenience init() {
        self.init(
            style: isatty(STDERR_FILENO) != 0 ? .bar : .lines, write: { text in FileHandle.standardError.write(Data(text.utf8)) },
            clock: { MonotonicClock.seconds })
    }

    /// Progress with an explicit style, output and clock (seconds), e.g. for tests.
    public init(style: ProgressReporter.Style, write: @escaping (String) -> Void, clock: @escaping () -> Double) {
        self.style = style
        self.write = write
        self.clock = clock
    }

    /// Runs `work`, the stage `title` of `steps` steps (`nil`: a stage without steps), handing
    /// it a reporter to advance, then writes how long it took.
    public func stage<Result>(_ title: String, steps: Int? = nil, _ work: (ProgressReporter?) throws -> Result) rethrows -> Result {
        if style == .bar && steps == nil { write("\r\u{1B}[2K\(title)…") }
        let reporter = steps.map { ProgressReporter(title: title, totalSteps: max($0, 1), style: style, write: write, clock: clock) }
        let start = clock()
        let result = try work(reporter)
        let seconds = "\(title): \(String(format: "%.1f", clock() - start)) s\n"
        switch style {
        case .bar: write("\r\u{1B}[2K" + seconds)
        case .lines: if !(reporter?.hasDrawn ?? false) { write(seconds) }
        }
        return result
    }
}
