import Foundation

/// A task chosen for a run, with its loss weight and option overrides.
public struct TaskSelection: Codable, Sendable, Equatable {
    public var name: String
    /// The loss weight: a constant or a schedule over the run.
    public var weight: TaskWeight
    /// Option overrides by option name (`["out-dim": "4096"]`).
    public var options: [String: String]

    public init(name: String, weight: TaskWeight = 1, options: [String: String] = [:]) {
        self.name = name
        self.weight = weight
        self.options = options
    }
}

extension TaskSelection {
    /// `Task` with a configuration built in code, stored as the options that differ from the
    /// defaults, so that a recipe (and a checkpoint) holding it rebuilds the same task.
    public init<Task: PretextTask>(_ task: Task.Type, configuration: Task.Configuration, weight: TaskWeight? = nil) {
        self.init(
            name: Task.name, weight: weight ?? TaskWeight(Task.defaultWeight),
            options: TaskOptionCoding.options(of: configuration))
    }
}

/// Which images a run trains on.
public struct DataSource: Codable, Sendable, Equatable {
    /// A folder, CIFAR folder or HDF5 file; `nil` for the built-in Fashion-MNIST.
    public var path: String?
    /// Train on a seeded subset of this many images.
    public var subset: Int?

    public init(path: String? = nil, subset: Int? = nil) {
        self.path = path
        self.subset = subset
    }
}

/// Everything that defines a training run: architecture, crops, tasks and their weights,
/// optimisation, data, length and seed. Serialised as the run's JSON configuration (and
/// stored in checkpoints), so a run resumes from its folder alone.
public struct TrainingRecipe: Codable, Sendable, Equatable {
    public var backbone: VisionTransformerConfiguration
    public var views: ViewPlan
    public var tasks: [TaskSelection]
    public var optimization: OptimizationConfiguration
    public var epochs: Int
    /// Images per step over all processes; each of N processes takes `batchSize / N` of them,
    /// so a run means the same whatever N (and resumes with another N).
    public var batchSize: Int
    public var seed: UInt64
    /// The training images.
    public var data = DataSource()
    /// How the crops are made. `ssl-run` stores the one the tasks agree on
    /// (``TaskRegistry/augmentation(agreedBy:)``) or the one it was told; configurations written
    /// before it was stored have none and keep what they trained with: the augmentation their
    /// first task asks for (see ``augmentation(registry:)``).
    public var augmentation: AugmentationRecipe?
    /// The precision of the training step's matrix products (`ssl-run --precision`); `nil` in
    /// configurations written before it was stored, which trained in float32.
    public var precision: BLAS.Precision?

    public init(
        backbone: VisionTransformerConfiguration, views: ViewPlan, tasks: [TaskSelection],
        optimization: OptimizationConfiguration = OptimizationConfiguration(), epochs: Int, batchSize: Int, seed: UInt64 = 0,
        augmentation: AugmentationRecipe? = nil
    ) {
        self.backbone = backbone
        self.views = views
        self.tasks = tasks
        self.optimization = optimization
        self.epochs = epochs
        self.batchSize = batchSize
        self.seed = seed
        self.augmentation = augmentation
    }

    /// The augmentation the run trains with: ``augmentation``, or in a configuration written
    /// before it was stored, the augmentation its first task asks for (DINO's multi-crop when
    /// it asks for none).
    ///
    /// - Throws: ``ConfigurationError`` when the first task is unknown.
    public func augmentation(registry: TaskRegistry) throws -> AugmentationRecipe {
        if let augmentation { return augmentation }
        guard let first = tasks.first else { return .multiCrop }
        return try registry.entry(named: first.name).augmentation ?? .multiCrop
    }

    /// Trains the tasks named in `list` (comma-separated, as `--tasks` takes them) instead of
    /// the current ones: a task already chosen keeps its weight and options, another takes its
    /// default weight.
    ///
    /// - Throws: ``ConfigurationError`` naming an unknown task.
    public mutating func selectTasks(_ list: String, registry: TaskRegistry) throws {
        let names = list.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
        tasks = try names.map { name in
            let entry = try registry.entry(named: name)
            return tasks.first { $0.name == name } ?? TaskSelection(name: name, weight: TaskWeight(entry.defaultWeight))
        }
    }

    /// Builds the backbone, the tasks and the trainer.
    ///
    /// - Throws: ``ConfigurationError``, ``TaskConfigurationError`` or ``TrainingError`` describing what to change.
    public func makeTrainer(
        registry: TaskRegistry, iterationsPerEpoch: Int, collective: Collective = SingleProcessCollective()
    ) throws -> Trainer {
        try validate(registry: registry)
        guard batchSize % collective.worldSize == 0 else {
            throw ConfigurationError(
                "--batch-size \(batchSize) (images per step over all processes) does not split evenly over "
                    + "\(collective.worldSize) processes; use a multiple of \(collective.worldSize).")
        }
        let setup = TaskSetup(
            backbone: backbone, views: views, epochs: epochs, iterationsPerEpoch: iterationsPerEpoch, seed: seed,
            collective: collective)
        let weighted = try tasks.map { selection in
            let weight: any Schedule
            do {
                weight = try selection.weight.schedule(epochs: epochs, iterationsPerEpoch: iterationsPerEpoch)
            } catch let error as TaskWeight.ParseError {
                throw ConfigurationError("The weight of '\(selection.name)': \(error.description).")
            }
            return WeightedTask(
                try registry.makeTask(named: selection.name, options: selection.options, setup: setup), weight: weight)
        }
        let built = weighted.map(\.task)
        for case let task as any ConnectingTask in built { try task.connect(to: built) }
        let backboneModel = VisionTransformer(backbone, seed: seed)
        return try Trainer(
            backbone: backboneModel, tasks: weighted, optimization: optimization, setup: setup, globalBatchSize: batchSize,
            precision: precision ?? .float32)
    }
}

extension TrainingRecipe {
    /// Reads a recipe from a JSON file (as `--print-config` or a run's `config.json` writes it).
    ///
    /// - Throws: ``ConfigurationError`` naming the file and the problem: missing or
    ///   unreadable, not JSON, a value of the wrong type (with its key), or a key that no
    ///   recipe has (a misspelling would otherwise be ignored).
    public init(jsonFile path: String) throws {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw ConfigurationError("--config \(path): cannot be read (\(FileSystemError.reason(of: error))).")
        }
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: data) } catch {
            throw ConfigurationError("--config \(path): not valid JSON (\((error as NSError).userInfo["NSDebugDescription"] ?? error)).")
        }
        do {
            self = try JSONDecoder().decode(TrainingRecipe.self, from: data)
        } catch let error as DecodingError {
            if let fraction = Self.fractionForWholeNumber(in: object, template: try Self.typeTemplate(), path: "") {
                throw ConfigurationError("--config \(path): '\(fraction.path)' must be a whole number, got \(fraction.value).")
            }
            throw ConfigurationError("--config \(path): \(Self.describe(error))")
        }
        var template = self
        // Optional keys, so that they count as known.
        template.data = DataSource(path: "", subset: 0)
        template.augmentation = AugmentationRecipe(paste: 1)
        template.precision = .float32
        let known = try JSONSerialization.jsonObject(with: try JSONEncoder().encode(template))
        if let unknown = Self.unknownKey(in: object, known: known, path: "") {
            throw ConfigurationError("--config \(path): unknown key '\(unknown)'; compare with the output of --print-config.")
        }
    }

    /// A recipe's JSON object in which every floating-point value is fractional, so that the
    /// integral numbers mark exactly the integer fields.
    private static func typeTemplate() throws -> Any {
        var template = TrainingRecipe(
            backbone: .tiny(), views: ViewPlan(globalSize: 224), tasks: [TaskSelection(name: "task", weight: 0.5)], epochs: 1,
            batchSize: 1)
        template.backbone.dropPathRate = 0.5
        template.optimization.finalTeacherMomentum = 0.5
        template.optimization.clipGradient = 0.5
        template.data = DataSource(path: "", subset: 0)
        template.augmentation = AugmentationRecipe(globalScale: 0.5...0.5, localScale: 0.5...0.5, paste: 0.5)
        return try JSONSerialization.jsonObject(with: try JSONEncoder().encode(template))
    }

    /// The first key path where `object` holds a fractional number and `template` an integer.
    private static func fractionForWholeNumber(in object: Any, template: Any, path: String) -> (path: String, value: Double)? {
        if let dictionary = object as? [String: Any], let templateDictionary = template as? [String: Any] {
            for (key, value) in dictionary.sorted(by: { $0.key < $1.key }) {
                guard let templateValue = templateDictionary[key] else { continue }
                let keyPath = path.isEmpty ? key : "\(path).\(key)"
                if let found = fractionForWholeNumber(in: value, template: templateValue, path: keyPath) { return found }
            }
        } else if let array = object as? [Any], let templateArray = template as? [Any], let first = templateArray.first {
            for (index, value) in array.enumerated() {
                if let found = fractionForWholeNumber(in: value, template: first, path: "\(path)[\(index)]") { return found }
            }
        } else if let number = object as? NSNumber, let templateNumber = template as? NSNumber, !(object is Bool),
            templateNumber.doubleValue.rounded() == templateNumber.doubleValue,
            number.doubleValue.rounded() != number.doubleValue
        {
            return (path, number.doubleValue)
        }
        return nil
    }

    /// A decoding error as `key.path: what is wrong`.
    private static func describe(_ error: DecodingError) -> String {
        func key(_ context: DecodingError.Context) -> String {
            context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let missing, let context):
            let parent = key(context)
            return "missing key '\(parent.isEmpty ? "" : parent + ".")\(missing.stringValue)'."
        case .typeMismatch(let type, let context):
            return "'\(key(context))' must be \(type == Int.self ? "a whole number" : "of type \(type)")."
        case .valueNotFound(_, let context):
            return "'\(key(context))' must not be null."
        case .dataCorrupted(let context):
            return "'\(key(context))': \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }

    /// The first key path of `object` that `known` does not have; task options are free-form.
    private static func unknownKey(in object: Any, known: Any, path: String) -> String? {
        if let dictionary = object as? [String: Any], let knownDictionary = known as? [String: Any] {
            for (key, value) in dictionary.sorted(by: { $0.key < $1.key }) {
                let keyPath = path.isEmpty ? key : "\(path).\(key)"
                guard let knownValue = knownDictionary[key] else {
                    if value is NSNull { continue }
                    return keyPath
                }
                if key == "options" { continue }
                if let found = unknownKey(in: value, known: knownValue, path: keyPath) { return found }
            }
        } else if let array = object as? [Any], let knownArray = known as? [Any] {
            for (index, (value, knownValue)) in zip(array, knownArray).enumerated() {
                if let found = unknownKey(in: value, known: knownValue, path: "\(path)[\(index)]") { return found }
            }
        }
        return nil
    }
}
