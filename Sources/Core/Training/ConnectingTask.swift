/// A task that works with another task of its run (e.g. one reading the other's head), connected
/// once every task of the run is built, in whatever order they were listed.
public protocol ConnectingTask: PretextTask {
    /// Connects the task to the run's `tasks` (in the run's order, this one included). Called
    /// once, before training starts or a checkpoint is restored.
    ///
    /// - Throws: ``ConfigurationError`` when a task it needs is not among them.
    func connect(to tasks: [any PretextTask]) throws
}
