#if canImport(Glibc)
import Glibc
#endif

/// Resident memory of this process, read from `/proc/self/status` (Linux).
public enum MemoryUsage {
    /// The peak resident set size (VmHWM) since the process started or ``resetPeak()``.
    public static var peakResidentBytes: Int { statusField("VmHWM:") }

    /// The current resident set size (VmRSS).
    public static var currentResidentBytes: Int { statusField("VmRSS:") }

    /// Restarts the peak measurement at the current resident size.
    public static func resetPeak() {
        guard let file = fopen("/proc/self/clear_refs", "w") else { return }
        fputs("5", file)
        fclose(file)
    }

    private static func statusField(_ field: String) -> Int {
        guard let file = fopen("/proc/self/status", "r") else { return 0 }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 256)
        while fgets(&line, Int32(line.count), file) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if text.hasPrefix(field) {
                let digits = text.dropFirst(field.count).filter(\.isNumber)
                return (Int(digits) ?? 0) * 1024
            }
        }
        return 0
    }
}
