/// A self-supervised objective that plugs into the shared backbone.
///
/// A task owns its heads (and declares their teacher copies, which the trainer checks and
/// updates by EMA with the backbone), its state (centres, queues), and computes named loss
/// terms from the shared forward pass. The trainer mixes the tasks' totals by weight, back-propagates each into the
/// backbone's output and then through the backbone once, and runs one optimisation step over
/// the backbone and every head.
///
/// Adding a task is one type conforming to this protocol plus one registration line:
///
/// ```swift
/// registry.register(RotationTask.self)
/// ```
///
/// A task never writes a backward pass: it composes `Tensor` operations, which all have one.
public protocol PretextTask: AnyObject {
    /// The task's options; every property has a default, and coding keys are the CLI names
    /// (`--<task>.<key>`).
    associatedtype Configuration: TaskConfiguration

    /// The name used on the command line and as the parameter prefix (`dino`).
    static var name: String { get }
    /// One line for `ssl-run tasks`.
    static var summary: String { get }
    /// The loss weight used when the run does not set one (1 unless the method says otherwise).
    static var defaultWeight: Double { get }
    /// The augmentation the task's method trains with, or `nil` (the default) when any suits
    /// it; see ``TaskRegistry/augmentation(agreedBy:)`` for how a run's tasks agree on one.
    static var augmentation: AugmentationRecipe? { get }

    /// Builds the task for a backbone and view plan.
    init(configuration: Configuration, setup: TaskSetup) throws

    /// What the task needs from the run, checked before training starts.
    var requirements: TaskRequirements { get }
    /// The trained heads, whose parameters appear as `<name>.<key>`, and their teacher copies
    /// (see ``TaskHeads``).
    var heads: TaskHeads { get }
    /// Tensors to checkpoint besides parameters (centres, queues), by name; `[]` for none.
    /// Required, so that a declaration of another type cannot silently go unsaved.
    var state: [(name: String, tensor: Tensor)] { get }
    /// How many of its 8 neighbours the task takes as each patch's positives, if it does
    /// (SelfPatch's k); the run's pictures outline that many.
    var patchNeighborCount: Int? { get }

    /// The image-level embedding `[batch, dim]` this task provides for a backbone pass (e.g. an
    /// aggregation head's class token), read by every task and probe instead of the backbone's
    /// class token; `nil` when the task provides none (see
    /// ``TaskRequirements/providesImageEmbedding``).
    func imageEmbedding(of features: BackboneFeatures, role: NetworkRole) -> Tensor?
    /// Computes the task's loss for one step; may update its state (centre EMA) afterwards.
    func loss(_ step: TaskStep) -> TaskLoss
    /// Whether the head parameter `name` (without the task prefix) is held fixed at global
    /// iteration `iteration`.
    func isFrozen(_ name: String, iteration: Int) -> Bool
    /// Scheduled values to log with the step at global iteration `iteration` (e.g. the teacher
    /// temperature).
    func loggedScheduleValues(iteration: Int) -> [String: Double]
}

extension PretextTask {
    public static var defaultWeight: Double { 1 }
    public static var augmentation: AugmentationRecipe? { nil }
    public var patchNeighborCount: Int? { nil }
    public func imageEmbedding(of features: BackboneFeatures, role: NetworkRole) -> Tensor? { nil }
    public func isFrozen(_ name: String, iteration: Int) -> Bool { false }
    public func loggedScheduleValues(iteration: Int) -> [String: Double] { [:] }
}

/// A task's options: `Codable` with a default for every property.
public protocol TaskConfiguration: Codable, Sendable {
    /// The defaults.
    init()
    /// One line of help per option, by coding key.
    static var help: [String: String] { get }
}

/// What a task is built for.
public struct TaskSetup {
    /// The backbone's architecture.
    public var backbone: VisionTransformerConfiguration
    /// The crops of every step.
    public var views: ViewPlan
    public var epochs: Int
    public var iterationsPerEpoch: Int
    /// Seeds the heads' initialisation.
    public var seed: UInt64
    public var collective: Collective

    public init(
        backbone: VisionTransformerConfiguration, views: ViewPlan, epochs: Int, iterationsPerEpoch: Int,
        seed: UInt64, collective: Collective = SingleProcessCollective()
    ) {
        self.backbone = backbone
        self.views = views
        self.epochs = epochs
        self.iterationsPerEpoch = iterationsPerEpoch
        self.seed = seed
        self.collective = collective
    }

    /// The run's length in iterations.
    public var totalIterations: Int { epochs * iterationsPerEpoch }

    /// The iterations `span` covers in this run.
    public func iterations(of span: TrainingSpan) -> Int {
        span.iterations(epochs: epochs, iterationsPerEpoch: iterationsPerEpoch)
    }

    /// A generator for the named task's initialisation, independent of other tasks.
    public func generator(for task: String) -> RandomGenerator {
        RandomGenerator(seed: seed, path: task.utf8.map { UInt64($0) })
    }
}

/// What a task needs from the run.
public struct TaskRequirements: Sendable {
    /// The fewest global crops the task works with.
    public var minimumGlobalViews: Int = 1
    /// The fewest local crops.
    public var minimumLocalViews: Int = 0
    /// Whether the task reads patch tokens: every crop must then give a patch grid of at least
    /// ``minimumPatchGrid`` patches a side.
    public var needsPatchTokens: Bool = false
    /// The fewest patches along each side of every crop's grid (SelfPatch's 8 neighbours need
    /// 3); more than 1 implies ``needsPatchTokens``.
    public var minimumPatchGrid: Int = 1
    /// Whether the task reads an image-level embedding (a class token or a provider).
    public var needsImageEmbedding: Bool = false
    /// Whether the task reads teacher features; implied when its heads declare a teacher
    /// (``TaskHeads``).
    public var needsTeacher: Bool = false
    /// Whether the task provides an image embedding itself (so the backbone may lack a class token).
    public var providesImageEmbedding: Bool = false
    /// Whether the task reads where its crops come from (``SharedForward/cropGeometry(_:)``):
    /// each step must then be given the batch's geometry.
    public var needsCropGeometry: Bool = false
    /// The fewest images each process must see per step (e.g. 2 to compare images with each other).
    public var minimumImagesPerProcess: Int = 1

    public init(
        minimumGlobalViews: Int = 1, minimumLocalViews: Int = 0, needsPatchTokens: Bool = false,
        needsImageEmbedding: Bool = false, needsTeacher: Bool = false, providesImageEmbedding: Bool = false,
        minimumImagesPerProcess: Int = 1, minimumPatchGrid: Int = 1, needsCropGeometry: Bool = false
    ) {
        self.minimumGlobalViews = minimumGlobalViews
        self.minimumLocalViews = minimumLocalViews
        self.needsPatchTokens = needsPatchTokens
        self.needsImageEmbedding = needsImageEmbedding
        self.needsTeacher = needsTeacher
        self.providesImageEmbedding = providesImageEmbedding
        self.minimumImagesPerProcess = minimumImagesPerProcess
        self.minimumPatchGrid = minimumPatchGrid
        self.needsCropGeometry = needsCropGeometry
    }
}

/// Everything a task sees during one step.
public struct TaskStep {
    /// The shared backbone passes.
    public let forward: SharedForward
    public let epoch: Int
    /// The global iteration (epoch · iterationsPerEpoch + step).
    public let iteration: Int
    /// The run's processes, for reductions across them (centres, gathered keys).
    public let collective: Collective
    /// The name of the task reading this step.
    public let taskName: String
    /// The run's seed.
    let seed: UInt64

    /// The step as the task `taskName` of a run seeded with `seed` sees it.
    init(
        forward: SharedForward, epoch: Int, iteration: Int, taskName: String, seed: UInt64,
        collective: Collective = SingleProcessCollective()
    ) {
        self.forward = forward
        self.epoch = epoch
        self.iteration = iteration
        self.taskName = taskName
        self.seed = seed
        self.collective = collective
    }

    /// A generator for the task's random choices at this step (masks, sampled pairs): its
    /// stream follows from the run's seed, the task's name, the iteration and the process's
    /// rank alone, so a resumed run draws the same numbers and every process its own. Each
    /// call starts the same stream: draw everything of a step from one generator, or pass a
    /// different `stream` for independent draws.
    public func generator(stream: UInt64 = 0) -> RandomGenerator {
        RandomGenerator(
            seed: seed,
            path: [Self.generatorTag, UInt64(taskName.utf8.count)] + taskName.utf8.map { UInt64($0) }
                + [UInt64(iteration), UInt64(collective.rank), stream])
    }

    /// Sets the steps' streams apart from the other streams of a run.
    private static let generatorTag: UInt64 = 0x57E9
}

/// A task's loss for one step.
public struct TaskLoss {
    /// What the trainer weights and back-propagates.
    public var total: Tensor
    /// Named values to log (sub-terms, statistics).
    public var terms: [String: Double]
    /// Collapse signals, logged with the terms and watched by the run's ``CollapseMonitor``.
    public var health: TaskHealth

    public init(total: Tensor, terms: [String: Double] = [:], health: TaskHealth = TaskHealth()) {
        self.total = total
        self.terms = terms
        self.health = health
    }
}
