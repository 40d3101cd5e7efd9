import SSLCore

/// The options of a DINO-style distillation head, shared by `dino` (image level), `selfpatch`
/// (patch level), `regiondino` (region level), `pastedino` (pasted garments) and `ibot`; the
/// coding keys are the command-line names.
public struct DistillationSettings: Codable, Sendable, Equatable {
    public var outputDimension: Int
    public var hiddenDimension = 2048
    public var bottleneckDimension = 256
    public var headLayers = 3
    public var batchNormInHead = false
    public var normalizeLastLayer = true
    public var teacherTemperature = 0.04
    public var warmupTeacherTemperature = 0.04
    public var teacherTemperatureWarmup = TrainingSpan.epochs(0)
    public var studentTemperature = 0.1
    public var centerMomentum = 0.9
    /// How the teacher's logits become targets: DINO's EMA centre or DINOv2's Sinkhorn-Knopp.
    public var centering = TeacherCentering.ema
    public var lastLayerFreeze = TrainingSpan.epochs(1)

    public init(outputDimension: Int) {
        self.outputDimension = outputDimension
    }

    enum CodingKeys: String, CodingKey {
        case outputDimension = "out-dim"
        case hiddenDimension = "hidden-dim"
        case bottleneckDimension = "bottleneck-dim"
        case headLayers = "head-layers"
        case batchNormInHead = "head-batch-norm"
        case normalizeLastLayer = "norm-last-layer"
        case teacherTemperature = "teacher-temp"
        case warmupTeacherTemperature = "warmup-teacher-temp"
        case teacherTemperatureWarmup = "warmup-teacher-temp-epochs"
        case studentTemperature = "student-temp"
        case centerMomentum = "center-momentum"
        case centering
        case lastLayerFreeze = "freeze-last-layer"
    }

    /// One line per option.
    public static let help: [String: String] = [
        "out-dim": "Prototypes K of the head's last layer.",
        "hidden-dim": "Width of the head's hidden layers.",
        "bottleneck-dim": "Width of the bottleneck before the last layer.",
        "head-layers": "MLP layers before the bottleneck.",
        "head-batch-norm": "Batch norm after the head's hidden layers.",
        "norm-last-layer": "Freeze the last layer's weight-norm magnitudes at 1.",
        "teacher-temp": "Teacher temperature after warm-up.",
        "warmup-teacher-temp": "Teacher temperature at the start of the run.",
        "warmup-teacher-temp-epochs": "Length of the linear teacher-temperature warm-up: epochs (30), steps (500 steps) or a share of the run (10%).",
        "student-temp": "Student temperature.",
        "center-momentum": "EMA momentum of the centre.",
        "centering": "Teacher targets: ema (DINO's centre) or sinkhorn (DINOv2's Sinkhorn-Knopp, 3 iterations, no centre).",
        "freeze-last-layer": "How long the head's last layer is not trained: epochs (1), steps (50 steps) or a share of the run (5%).",
    ]
}

extension DistillationSettings {
    /// Throws when an option would leave the targets or the loss undefined: a temperature that is
    /// not positive (the logits are divided by it) or a centre momentum outside 0…1.
    func validate(task: String) throws {
        let temperatures = [
            ("teacher-temp", teacherTemperature), ("warmup-teacher-temp", warmupTeacherTemperature),
            ("student-temp", studentTemperature),
        ]
        for (option, value) in temperatures where !(value > 0) {
            throw TaskConfigurationError("--\(task).\(option) must be positive (the logits are divided by it), got \(value).")
        }
        guard (0...1).contains(centerMomentum) else {
            throw TaskConfigurationError("--\(task).center-momentum must lie in 0…1, got \(centerMomentum).")
        }
    }
}

/// Self-distillation through a projection head, as DINO defines it (`DINOHead` and `DINOLoss` in facebookresearch/dino): a student
/// and a teacher ``DINOHead``, the teacher's outputs centred and sharpened into targets, the
/// centre's EMA, the teacher-temperature warm-up and the last layer's freeze.
///
/// The warm-up and the freeze are spans of the run (``TrainingSpan``): in epochs they behave
/// exactly as DINO's per-epoch schedules, in steps or as a share of the run they suit short runs.
public final class Distillation {
    public let settings: DistillationSettings
    public let head: DINOHead
    /// The teacher's copy of ``head``: declare it as the head's teacher (``TaskHeads``), and the
    /// trainer copies the head's state into it and updates it by EMA.
    public let teacherHead: DINOHead
    public let targets: CenteredTargets
    private let temperatures: LinearWarmupSchedule
    /// The iterations during which the last layer is held fixed.
    private let frozenIterations: Int

    /// A distillation head for `inputDimension`-wide embeddings in the run `setup` describes.
    ///
    /// - Throws: ``TaskConfigurationError`` naming `task`'s option when a temperature is not
    ///   positive or the centre's momentum lies outside 0…1.
    public init(
        task: String, settings: DistillationSettings, inputDimension: Int, setup: TaskSetup, generator: inout RandomGenerator
    ) throws {
        try settings.validate(task: task)
        self.settings = settings
        func makeHead(_ generator: inout RandomGenerator) -> DINOHead {
            DINOHead(
                inputDimension: inputDimension, outputDimension: settings.outputDimension,
                hiddenDimension: settings.hiddenDimension, bottleneckDimension: settings.bottleneckDimension,
                layerCount: settings.headLayers, batchNorm: settings.batchNormInHead,
                normalizeLastLayer: settings.normalizeLastLayer, generator: &generator)
        }
        head = makeHead(&generator)
        teacherHead = makeHead(&generator)
        targets = CenteredTargets(
            outputDimension: settings.outputDimension, momentum: settings.centerMomentum, centering: settings.centering)
        temperatures = LinearWarmupSchedule(
            start: settings.warmupTeacherTemperature, final: settings.teacherTemperature,
            span: settings.teacherTemperatureWarmup, epochs: setup.epochs, iterationsPerEpoch: setup.iterationsPerEpoch)
        frozenIterations = setup.iterations(of: settings.lastLayerFreeze)
    }

    /// A distillation through `other`'s student and teacher heads with targets of its own: a
    /// centre and teacher temperatures from `settings` (whose head options do not apply), and
    /// no freeze of its own (`other`'s holds for the shared head).
    ///
    /// - Throws: ``TaskConfigurationError`` as the other initialiser does.
    public init(task: String, settings: DistillationSettings, sharingHeadsOf other: Distillation, setup: TaskSetup) throws {
        try settings.validate(task: task)
        self.settings = settings
        head = other.head
        teacherHead = other.teacherHead
        targets = CenteredTargets(
            outputDimension: other.settings.outputDimension, momentum: settings.centerMomentum, centering: settings.centering)
        temperatures = LinearWarmupSchedule(
            start: settings.warmupTeacherTemperature, final: settings.teacherTemperature,
            span: settings.teacherTemperatureWarmup, epochs: setup.epochs, iterationsPerEpoch: setup.iterationsPerEpoch)
        frozenIterations = 0
    }

    /// The teacher temperature at global iteration `iteration`.
    public func teacherTemperature(iteration: Int) -> Double { temperatures.value(at: iteration) }

    /// The teacher's centred, sharpened probabilities for its logits, as constants
    /// (Sinkhorn-Knopp normalises over the logits of every process of `collective`).
    public func teacherTargets(_ teacherLogits: Tensor, iteration: Int, collective: Collective) -> Tensor {
        targets.probabilities(of: teacherLogits, temperature: teacherTemperature(iteration: iteration), collective: collective)
    }

    /// The mean cross-entropy of the student's logits against teacher targets.
    public func loss(studentLogits: Tensor, targets teacherTargets: Tensor) -> Tensor {
        studentLogits.distillationLoss(targets: teacherTargets, studentTemperature: settings.studentTemperature)
    }

    /// Whether the head parameter `name` is held fixed at `iteration` (the last layer, early on).
    public func isFrozen(_ name: String, iteration: Int) -> Bool {
        iteration < frozenIterations && name.contains("last_layer")
    }
}

/// A pretext task trained through one ``Distillation``: the distillation's centre is the task's
/// state in checkpoints, and the head's last-layer freeze and the teacher-temperature schedule
/// are the task's.
public protocol DistillingTask: PretextTask {
    /// The head and targets the task trains through.
    var distillation: Distillation { get }
    /// The name of the centre in the task's checkpointed state (`center` unless the task says).
    static var centerName: String { get }
}

extension DistillingTask {
    public static var centerName: String { "center" }

    public var state: [(name: String, tensor: Tensor)] { [(Self.centerName, distillation.targets.center)] }

    public func isFrozen(_ name: String, iteration: Int) -> Bool { distillation.isFrozen(name, iteration: iteration) }

    public func loggedScheduleValues(iteration: Int) -> [String: Double] {
        ["teacher_temperature": distillation.teacherTemperature(iteration: iteration)]
    }
}

/// The distillation of a task that can share `dino`'s head (`--<task>.shared-head true`, as
/// iBOT's `shared_head`): a head of its own with its teacher copy, or `dino`'s heads with the
/// task's own centre and temperatures, known once the run's tasks are connected.
public final class SharableDistillation {
    /// The task's own head and targets; `nil` when it shares `dino`'s head.
    public let own: Distillation?
    private var shared: Distillation?
    private let task: String, settings: DistillationSettings, setup: TaskSetup

    /// A distillation of `task` with `settings`: a head of its own, unless `sharesHead`.
    public init(task: String, settings: DistillationSettings, sharesHead: Bool, inputDimension: Int, setup: TaskSetup) throws {
        self.task = task
        self.settings = settings
        self.setup = setup
        if sharesHead {
            try settings.validate(task: task)
            own = nil
        } else {
            var generator = setup.generator(for: task)
            own = try Distillation(task: task, settings: settings, inputDimension: inputDimension, setup: setup, generator: &generator)
        }
    }

    /// The head and targets: the task's own, or, after ``connect(to:)``, `dino`'s heads with the
    /// task's targets.
    public var distillation: Distillation {
        guard let distillation = own ?? shared else {
            preconditionFailure("\(task) with a shared head reads dino's head, which it has after connect(to:).")
        }
        return distillation
    }

    /// The task's own head and its teacher copy as `head`, or nothing with a shared head.
    public var heads: [TaskHeads.Member] {
        own.map { [.head("head", $0.head, teacher: $0.teacherHead)] } ?? []
    }

    /// The centre to checkpoint under `name`, once there is one.
    public func state(centerName name: String) -> [(name: String, tensor: Tensor)] {
        (own ?? shared).map { [(name, $0.targets.center)] } ?? []
    }

    /// Whether the task's own head parameter `name` is held fixed (a shared head follows `dino`'s freeze).
    public func isFrozen(_ name: String, iteration: Int) -> Bool { own?.isFrozen(name, iteration: iteration) ?? false }

    /// With a shared head, takes the heads of the `dino` task among the run's `tasks`.
    ///
    /// - Throws: ``ConfigurationError`` when the run has no `dino` task.
    public func connect(to tasks: [any PretextTask]) throws {
        guard own == nil else { return }
        guard let dino = tasks.lazy.compactMap({ $0 as? DINOTask }).first else {
            throw ConfigurationError("--\(task).shared-head true shares dino's head, but dino is not among the tasks; add it to --tasks.")
        }
        shared = try Distillation(task: task, settings: settings, sharingHeadsOf: dino.distillation, setup: setup)
    }
}
