#if canImport(Glibc)
import Glibc
#endif

/// Seconds on the system's monotonic clock, for measuring durations.
public enum MonotonicClock {
    /// The current reading.
    public static var seconds: Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
    }

    /// How long `body` takes, in seconds.
    public static func measure(_ body: () throws -> Void) rethrows -> Double {
        let start = seconds
        try body()
        return seconds - start
    }
}
