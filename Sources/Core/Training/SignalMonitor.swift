import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Turns SIGINT and SIGTERM into a request to stop after the current step, so a run can write
/// its checkpoint and exit with the conventional status (128 + signal).
public enum SignalMonitor {
    private static let received = Atomic<Int32>(0)

    /// Installs the handlers (once; later calls do nothing).
    public static func install() {
        _ = installation
    }

    private static let installation: Bool = {
        for number in [SIGINT, SIGTERM] {
            signal(number) { number in SignalMonitor.received.store(number, ordering: .relaxed) }
        }
        return true
    }()

    /// The signal that asked the run to stop, if any.
    public static var stopSignal: Int32? {
        let value = received.load(ordering: .relaxed)
        return value == 0 ? nil : value
    }
}
