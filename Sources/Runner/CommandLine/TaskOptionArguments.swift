import SSLCore

/// Splits the task-namespaced options the argument parser leaves unrecognised
/// (`--dino.out-dim 4096`, `--selfpatch.k-num=2`) into per-task option dictionaries.
enum TaskOptionArguments {
    static func parse(_ arguments: [String]) throws -> [String: [String: String]] {
        var result: [String: [String: String]] = [:]
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            guard argument.hasPrefix("--"), let dot = argument.firstIndex(of: ".") else {
                throw ConfigurationError(
                    "Unexpected argument '\(argument)'. Task options look like --<task>.<option> <value>; see `ssl-run tasks`.")
            }
            let task = String(argument[argument.index(argument.startIndex, offsetBy: 2)..<dot])
            var key = String(argument[argument.index(after: dot)...])
            let value: String
            if let equals = key.firstIndex(of: "=") {
                value = String(key[key.index(after: equals)...])
                key = String(key[..<equals])
            } else {
                guard index + 1 < arguments.count else {
                    throw ConfigurationError("\(argument) needs a value.")
                }
                index += 1
                value = arguments[index]
            }
            result[task, default: [:]][key] = value
            index += 1
        }
        return result
    }

    /// Parses `dino=1,selfpatch=0.1` or scheduled weights such as `koleo=1@0:0.1@100%`.
    static func weights(_ text: String) throws -> [String: TaskWeight] {
        var result: [String: TaskWeight] = [:]
        for item in text.split(separator: ",") {
            let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else {
                throw ConfigurationError(
                    "--weights expects task=weight pairs separated by commas (e.g. dino=1,selfpatch=0.1 or "
                        + "koleo=1@0:0.1@100%), got '\(item)'.")
            }
            let weight: TaskWeight
            do { weight = try TaskWeight(parsing: parts[1]) } catch let error as TaskWeight.ParseError {
                throw ConfigurationError("--weights \(parts[0]): \(error.description).")
            }
            guard result.updateValue(weight, forKey: parts[0]) == nil else {
                throw ConfigurationError("--weights gives '\(parts[0])' twice; give each task one weight.")
            }
        }
        return result
    }
}
