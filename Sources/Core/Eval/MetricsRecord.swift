import Foundation

/// One line of a run's `metrics.jsonl`: the values logged at one step (losses, health metrics,
/// probe results), as a flat JSON object `{"step": 120, "epoch": 3, "loss": 5.93, ...}`.
///
/// Non-finite values (a diverged loss) are written as `null` and read back as NaN, so the file
/// stays valid JSON.
public struct MetricsRecord: Sendable {
    /// The global training step (or evaluation index) the values belong to.
    public var step: Int
    /// The epoch, when the values belong to one.
    public var epoch: Int?
    /// The logged values by name; names group into charts by the part before the first `/`.
    public var values: [String: Double]

    public init(step: Int, epoch: Int? = nil, values: [String: Double]) {
        precondition(
            values["step"] == nil && values["epoch"] == nil, "MetricsRecord: 'step' and 'epoch' are reserved names.")
        self.step = step
        self.epoch = epoch
        self.values = values
    }

    /// The record as one line of JSON (no newline), keys after `step` and `epoch` sorted.
    public var jsonLine: String {
        var fields = ["\"step\":\(step)"]
        if let epoch { fields.append("\"epoch\":\(epoch)") }
        for key in values.keys.sorted() {
            let value = values[key]!
            fields.append("\(Self.jsonString(key)):\(value.isFinite ? "\(value)" : "null")")
        }
        return "{" + fields.joined(separator: ",") + "}"
    }

    /// Parses one line written by ``jsonLine`` (or any flat JSON object with an integer `step`
    /// and numeric or null values).
    public init(jsonLine line: String) throws {
        guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              let step = (object["step"] as? NSNumber)?.intValue
        else { throw RunReportError.malformedLine(line) }
        var values: [String: Double] = [:]
        for (key, value) in object where key != "step" && key != "epoch" {
            if let number = value as? NSNumber {
                values[key] = number.doubleValue
            } else if value is NSNull {
                values[key] = .nan
            } else {
                throw RunReportError.malformedLine(line)
            }
        }
        self.init(step: step, epoch: (object["epoch"] as? NSNumber)?.intValue, values: values)
    }

    /// `text` as a JSON string literal.
    static func jsonString(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\t": result += "\\t"
            case "\r": result += "\\r"
            default:
                if scalar.value < 0x20 {
                    result += String(format: "\\u%04x", scalar.value)
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result + "\""
    }
}

/// Why a run folder could not be read or written.
public enum RunReportError: Error, CustomStringConvertible {
    case malformedLine(String)
    case unreadable(path: String, reason: String)

    public var description: String {
        switch self {
        case .malformedLine(let line): "metrics.jsonl: not a metrics record: \(line.prefix(200))"
        case .unreadable(let path, let reason): "\(path): \(reason)"
        }
    }
}
