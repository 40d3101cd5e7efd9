import Foundation

/// A task's options refused, by their decoding (`--dino.out-dim 1.5`) or by the task itself
/// when it is built for a run (`--ibot.pred-aspect-ratio -1`), phrased for the command line.
/// The rest of a run's configuration throws ``ConfigurationError``.
public struct TaskConfigurationError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The pretext tasks a run can choose from, by name.
///
/// ```swift
/// var registry = TaskRegistry()
/// registry.register(DINOTask.self)
/// let task = try registry.makeTask(named: "dino", options: ["out-dim": "4096"], setup: setup)
/// ```
public struct TaskRegistry {
    /// A registered task type's description and factory.
    public struct Entry {
        public var name: String
        public var summary: String
        public var defaultWeight: Double
        /// The augmentation the task asks for (``PretextTask/augmentation``).
        public var augmentation: AugmentationRecipe?
        /// The options with their defaults, as JSON values, in key order.
        public var defaults: [(key: String, value: String, help: String)]
        let make: (_ options: [String: String], _ setup: TaskSetup) throws -> any PretextTask
    }

    public private(set) var entries: [Entry] = []

    public init() {}

    /// Makes `Task` available under `Task.name`.
    ///
    /// Stops the program when the name is taken or when `Task.Configuration.help` and the
    /// configuration's coding keys disagree (an option without help, or help for no option):
    /// mistakes of the plugin's author, found the first time the plugin is registered.
    public mutating func register<Task: PretextTask>(_ task: Task.Type) {
        precondition(!entries.contains { $0.name == Task.name }, "A task named '\(Task.name)' is already registered.")
        let defaults = TaskOptionCoding.defaults(of: Task.Configuration.self)
        if let mismatch = TaskOptionCoding.helpMismatch(of: Task.Configuration.self) {
            preconditionFailure("Task '\(Task.name)': \(mismatch)")
        }
        entries.append(
            Entry(
                name: Task.name, summary: Task.summary, defaultWeight: Task.defaultWeight, augmentation: Task.augmentation,
                defaults: defaults.map { ($0.key, $0.value, Task.Configuration.help[$0.key] ?? "") },
                make: { options, setup in
                    try Task(configuration: TaskOptionCoding.decode(Task.Configuration.self, task: Task.name, options: options),
                             setup: setup)
                }))
    }

    /// The entry registered as `name`.
    public func entry(named name: String) throws -> Entry {
        guard let entry = entries.first(where: { $0.name == name }) else {
            throw ConfigurationError(
                "Unknown task '\(name)'. Available tasks: \(names.joined(separator: ", ")) (see `ssl-run tasks`).")
        }
        return entry
    }

    /// The augmentation a run of the tasks `names` trains with: every task that asks for one
    /// (``PretextTask/augmentation``) must ask for the same, which is then chosen; tasks that ask
    /// for none accept it; when none asks, DINO's multi-crop (``AugmentationRecipe/multiCrop``).
    /// The order of the tasks does not matter.
    ///
    /// - Throws: ``ConfigurationError`` naming the tasks that disagree and how to choose,
    ///   or an unknown task.
    public func augmentation(agreedBy names: [String]) throws -> AugmentationRecipe {
        var wishes: [(task: String, augmentation: AugmentationRecipe)] = []
        for name in names {
            if let wish = try entry(named: name).augmentation { wishes.append((name, wish)) }
        }
        guard let first = wishes.first else { return .multiCrop }
        if let other = wishes.first(where: { $0.augmentation != first.augmentation }) {
            throw ConfigurationError(
                "Tasks '\(first.task)' and '\(other.task)' train with different augmentations (\(first.augmentation.summary) against "
                    + "\(other.augmentation.summary)); choose one with --augmentation \(AugmentationRecipe.Family.allCases.map(\.rawValue).joined(separator: "|")) "
                    + "(and --global-scale, --local-scale).")
        }
        return first.augmentation
    }

    /// The registered names.
    public var names: [String] { entries.map(\.name) }

    /// Builds the task `name` with option overrides given as strings (`["out-dim": "4096"]`).
    public func makeTask(named name: String, options: [String: String] = [:], setup: TaskSetup) throws -> any PretextTask {
        try entry(named: name).make(options, setup)
    }
}

/// Converts between task configurations and string options, using the coding keys as option
/// names and the defaults' JSON types to parse values. Options with integer defaults take whole
/// numbers ≥ 0, and those that size a network (names ending in `dim` or `layers`)
/// take whole numbers ≥ 1.
public enum TaskOptionCoding {
    /// Every option of `Configuration` with its default value rendered as JSON, sorted by key.
    public static func defaults<Configuration: TaskConfiguration>(of type: Configuration.Type) -> [(key: String, value: String)] {
        let object = defaultObject(type)
        return object.keys.sorted().map { key in (key, render(object[key]!)) }
    }

    /// What is wrong when `Configuration.help` does not describe exactly its options (the
    /// coding keys), or `nil` when it does.
    public static func helpMismatch<Configuration: TaskConfiguration>(of type: Configuration.Type) -> String? {
        let options = Set(defaultObject(type).keys), documented = Set(Configuration.help.keys)
        guard options != documented else { return nil }
        return "\(Configuration.self).help must describe exactly its options (the coding keys); without help: "
            + "\(options.subtracting(documented).sorted()), help for no option: \(documented.subtracting(options).sorted())."
    }

    /// Decodes a configuration from its defaults overlaid with `options`.
    public static func decode<Configuration: TaskConfiguration>(
        _ type: Configuration.Type, task: String, options: [String: String]
    ) throws -> Configuration {
        var object = defaultObject(type)
        for (key, text) in options {
            guard let defaultValue = object[key] else {
                throw TaskConfigurationError(
                    "Task '\(task)' has no option '\(key)'. Its options: \(object.keys.sorted().joined(separator: ", ")).")
            }
            object[key] = try parse(
                text, like: defaultValue, isInteger: isIntegerOption(key, of: type), option: "--\(task).\(key)")
        }
        let data = try JSONSerialization.data(withJSONObject: object)
        do {
            return try JSONDecoder().decode(Configuration.self, from: data)
        } catch let DecodingError.dataCorrupted(context), let DecodingError.typeMismatch(_, context) {
            let key = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw TaskConfigurationError("--\(task).\(key): \(context.debugDescription)")
        }
    }

    /// Whether the option `key` of `Configuration` holds an integer: its defaults with a
    /// fraction there do not decode. (JSON writes a floating-point 1.0 as 1, so the default's
    /// text cannot tell.)
    private static func isIntegerOption<Configuration: TaskConfiguration>(_ key: String, of type: Configuration.Type) -> Bool {
        var object = defaultObject(type)
        guard object[key] is NSNumber else { return false }
        object[key] = 0.5
        guard let data = try? JSONSerialization.data(withJSONObject: object) else { return false }
        return (try? JSONDecoder().decode(Configuration.self, from: data)) == nil
    }

    /// The options of `configuration` that differ from its type's defaults, as the strings
    /// ``decode(_:task:options:)`` reads back into the same configuration.
    public static func options<Configuration: TaskConfiguration>(of configuration: Configuration) -> [String: String] {
        let defaults = defaultObject(Configuration.self), values = object(configuration)
        var options: [String: String] = [:]
        for (key, value) in values where render(value) != defaults[key].map(render) {
            options[key] = render(value)
        }
        return options
    }

    private static func defaultObject<Configuration: TaskConfiguration>(_ type: Configuration.Type) -> [String: Any] {
        object(Configuration())
    }

    private static func object<Configuration: TaskConfiguration>(_ configuration: Configuration) -> [String: Any] {
        guard let data = try? JSONEncoder().encode(configuration),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { preconditionFailure("\(Configuration.self) must encode to a JSON object.") }
        return object
    }

    private static func parse(_ text: String, like defaultValue: Any, isInteger: Bool, option: String) throws -> Any {
        if defaultValue is String { return text }
        let rendered = render(defaultValue)
        if rendered == "true" || rendered == "false" {
            switch text.lowercased() {
            case "true", "1", "yes", "on": return true
            case "false", "0", "no", "off": return false
            default: throw TaskConfigurationError("\(option) expects true or false, got '\(text)'.")
            }
        }
        if isInteger {
            // Integer options count things (layers, epochs, neighbours) or size them (`*-dim`).
            let smallest = Self.isSize(option) ? 1 : 0
            guard let value = Int(text) else { throw TaskConfigurationError("\(option) expects a whole number, got '\(text)'.") }
            // The task may ask for more when it is built (e.g. at least 2 regions).
            guard value >= smallest else {
                throw TaskConfigurationError("\(option) expects a whole number ≥ \(smallest), got '\(text)'.")
            }
            return value
        }
        if Double(rendered) != nil {
            guard let value = Double(text), value.isFinite else {
                throw TaskConfigurationError("\(option) expects a number, got '\(text)'.")
            }
            return value
        }
        guard let data = text.data(using: .utf8), let value = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        else { throw TaskConfigurationError("\(option) expects a JSON value, got '\(text)'.") }
        return value
    }

    /// Whether the option sizes part of a network (`--dino.out-dim`, `--dino.head-layers`), so
    /// that it must be positive.
    private static func isSize(_ option: String) -> Bool {
        option.hasSuffix("dim") || option.hasSuffix("layers")
    }

    private static func render(_ value: Any) -> String {
        if let string = value as? String { return string }
        if let data = try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed]) {
            return String(decoding: data, as: UTF8.self)
        }
        return "\(value)"
    }
}
