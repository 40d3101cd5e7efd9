/// A task chosen for a run, with its loss weight and option overrides.
public struct TaskSelection: Codable, Sendable, Equatable {
    public var name: String
    public var weight: Double
    /// Option overrides by option name (`["out-dim": "4096"]`).
    public var options: [String: String]

    public init(name: String, weight: Double = 1, options: [String: String] = [:]) {
        self.name = name
        self.weight = weight
        self.options = options
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

    public init(
        backbone: VisionTransformerConfiguration, views: ViewPlan, tasks: [TaskSelection],
        optimization: OptimizationConfiguration = OptimizationConfiguration(), epochs: Int, batchSize: Int, seed: UInt64 = 0
    ) {
        self.backbone = backbone
        self.views = views
        self.tasks = tasks
        self.optimization = optimization
        self.epochs = epochs
        self.batchSize = batchSize
        self.seed = seed
    }

    /// Builds the backbone, the tasks and the trainer.
    ///
    /// - Throws: ``TaskConfigurationError`` or ``TrainingError`` describing what to change.
    public func makeTrainer(
        registry: TaskRegistry, iterationsPerEpoch: Int, collective: Collective = SingleProcessCollective()
    ) throws -> Trainer {
        try validate(registry: registry)
        guard batchSize % collective.worldSize == 0 else {
            throw TaskConfigurationError(
                "--batch-size \(batchSize) (images per step over all processes) does not split evenly over "
                    + "\(collective.worldSize) processes; use a multiple of \(collective.worldSize).")
        }
        let setup = TaskSetup(
            backbone: backbone, views: views, epochs: epochs, iterationsPerEpoch: iterationsPerEpoch, seed: seed,
            collective: collective)
        let weighted = try tasks.map { selection in
            WeightedTask(try registry.makeTask(named: selection.name, options: selection.options, setup: setup),
                         weight: ConstantSchedule(selection.weight))
        }
        let backboneModel = VisionTransformer(backbone, seed: seed)
        return try Trainer(backbone: backboneModel, tasks: weighted, optimization: optimization, setup: setup, globalBatchSize: batchSize)
    }
}
