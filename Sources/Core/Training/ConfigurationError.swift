/// A run configuration that cannot work: a flag, a configuration file or a combination of
/// tasks, phrased for the command line (the flag, what is wrong and what to do).
///
/// A task refusing its own options throws ``TaskConfigurationError`` instead; a checkpoint
/// that cannot be used, ``CheckpointError``.
public struct ConfigurationError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
