/// Whether operations record the history that backward passes need.
///
/// Recording is on by default. Teachers, evaluation and optimizer updates run without it:
///
/// ```swift
/// let targets = GradientMode.withoutGradient { teacher(images) }
/// ```
public enum GradientMode {
    @TaskLocal static var isRecording = true

    /// Whether operations currently record history.
    public static var isEnabled: Bool { isRecording }

    /// Runs `body` without recording history; results of operations inside do not require
    /// gradients.
    public static func withoutGradient<Result>(_ body: () throws -> Result) rethrows -> Result {
        try $isRecording.withValue(false, operation: body)
    }

    /// Runs `body` with recording switched on, even inside ``withoutGradient(_:)``.
    public static func withGradient<Result>(_ body: () throws -> Result) rethrows -> Result {
        try $isRecording.withValue(true, operation: body)
    }
}
