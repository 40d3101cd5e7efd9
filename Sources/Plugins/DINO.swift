import SSLCore

/// DINO: self-distillation with no labels (Caron et al., 2021; spec §2).
///
/// The student's image embedding of every view is trained to match the teacher's centred,
/// sharpened prototype distribution of every other global view.
public final class DINOTask: PretextTask {
    public struct Configuration: TaskConfiguration {
        public var outputDimension = 65536
        public var hiddenDimension = 2048
        public var bottleneckDimension = 256
        public var headLayers = 3
        public var batchNormInHead = false
        public var normalizeLastLayer = true
        public var teacherTemperature = 0.04
        public var warmupTeacherTemperature = 0.04
        public var warmupTeacherTemperatureEpochs = 0
        public var studentTemperature = 0.1
        public var centerMomentum = 0.9
        public var freezeLastLayerEpochs = 1
        /// Update the centre with the teacher's outputs on every crop, as SelfPatch does,
        /// instead of the global crops only.
        public var centerOverAllCrops = false

        public init() {}

        enum CodingKeys: String, CodingKey {
            case outputDimension = "out-dim"
            case hiddenDimension = "hidden-dim"
            case bottleneckDimension = "bottleneck-dim"
            case headLayers = "head-layers"
            case batchNormInHead = "head-batch-norm"
            case normalizeLastLayer = "norm-last-layer"
            case teacherTemperature = "teacher-temp"
            case warmupTeacherTemperature = "warmup-teacher-temp"
            case warmupTeacherTemperatureEpochs = "warmup-teacher-temp-epochs"
            case studentTemperature = "student-temp"
            case centerMomentum = "center-momentum"
            case freezeLastLayerEpochs = "freeze-last-layer"
            case centerOverAllCrops = "center-all-crops"
        }

        public static let help: [String: String] = [
            "out-dim": "Prototypes K of the head's last layer.",
            "hidden-dim": "Width of the head's hidden layers.",
            "bottleneck-dim": "Width of the bottleneck before the last layer.",
            "head-layers": "MLP layers before the bottleneck.",
            "head-batch-norm": "Batch norm after the head's hidden layers.",
            "norm-last-layer": "Freeze the last layer's weight-norm magnitudes at 1.",
            "teacher-temp": "Teacher temperature after warm-up.",
            "warmup-teacher-temp": "Teacher temperature at epoch 0.",
            "warmup-teacher-temp-epochs": "Epochs of linear teacher-temperature warm-up.",
            "student-temp": "Student temperature.",
            "center-momentum": "EMA momentum of the centre.",
            "freeze-last-layer": "Epochs during which the last layer is not trained.",
            "center-all-crops": "Update the centre with teacher outputs of all crops (SelfPatch) rather than the global ones.",
        ]
    }

    public static let name = "dino"
    public static let summary = "DINO self-distillation on the image embedding (Caron et al., 2021)."

    public let configuration: Configuration
    public let head: DINOHead
    public let teacherHead: DINOHead
    public let targets: CenteredTargets
    public let heads: Module
    public let teacherHeads: Module?
    private let temperatureSchedule: LinearWarmupSchedule

    public init(configuration: Configuration, setup: TaskSetup) throws {
        guard setup.views.globalCount >= 2 else {
            throw TaskConfigurationError("dino needs 2 global crops (it distils each global view into the others).")
        }
        self.configuration = configuration
        var generator = setup.generator(for: Self.name)
        func makeHead(_ generator: inout RandomGenerator) -> DINOHead {
            DINOHead(
                inputDimension: setup.backbone.embedDimension, outputDimension: configuration.outputDimension,
                hiddenDimension: configuration.hiddenDimension, bottleneckDimension: configuration.bottleneckDimension,
                layerCount: configuration.headLayers, batchNorm: configuration.batchNormInHead,
                normalizeLastLayer: configuration.normalizeLastLayer, generator: &generator)
        }
        head = makeHead(&generator)
        teacherHead = makeHead(&generator)
        teacherHead.copyState(from: head)
        targets = CenteredTargets(outputDimension: configuration.outputDimension, momentum: configuration.centerMomentum)
        heads = ModuleDictionary([("head", head)])
        teacherHeads = ModuleDictionary([("head", teacherHead)])
        temperatureSchedule = LinearWarmupSchedule(
            start: configuration.warmupTeacherTemperature, final: configuration.teacherTemperature,
            warmupEpochs: configuration.warmupTeacherTemperatureEpochs)
    }

    public var requirements: TaskRequirements {
        TaskRequirements(minimumGlobalViews: 2, needsImageEmbedding: true, needsTeacher: true)
    }

    public var state: [(name: String, tensor: Tensor)] { [("center", targets.center)] }

    public func isFrozen(_ name: String, epoch: Int) -> Bool {
        epoch < configuration.freezeLastLayerEpochs && name.contains("last_layer")
    }

    public func scheduleValues(epoch: Int) -> [String: Double] {
        ["teacher_temperature": temperatureSchedule.value(atEpoch: epoch)]
    }

    public func loss(_ step: TaskStep) -> TaskLoss {
        let forward = step.forward
        let viewCount = forward.views.count, globalCount = forward.globalViewCount, batch = forward.batchSize
        let studentEmbeddings = Tensor.concatenate((0..<viewCount).map { forward.imageEmbedding($0, role: .student) })
        let studentLogits = head(studentEmbeddings)
        let teacherViews = configuration.centerOverAllCrops ? viewCount : globalCount
        let teacherLogits = GradientMode.withoutGradient {
            teacherHead(Tensor.concatenate((0..<teacherViews).map { forward.imageEmbedding($0, role: .teacher) }))
        }
        let temperature = temperatureSchedule.value(atEpoch: step.epoch)
        let probabilities = targets.targets(teacherLogits.sliced(0..<(globalCount * batch)), temperature: temperature)
        var total: Tensor?
        var pairs = 0
        for target in 0..<globalCount {
            let teacherBlock = probabilities.sliced((target * batch)..<((target + 1) * batch))
            for view in 0..<viewCount where view != target {
                let studentBlock = studentLogits.sliced((view * batch)..<((view + 1) * batch))
                let term = studentBlock.distillationLoss(targets: teacherBlock, studentTemperature: configuration.studentTemperature)
                total = total.map { $0 + term } ?? term
                pairs += 1
            }
        }
        let loss = total! / Float(pairs)
        targets.update(with: teacherLogits, collective: step.collective)
        // Collapse indicators: a uniform teacher (entropy → log K) or one prototype for every
        // image (KL to uniform → log K), and the spread of the student's embeddings.
        let health = HealthMetrics.teacherDistribution(probabilities)
        return TaskLoss(total: loss, terms: [
            "teacher_entropy": health.entropy, "teacher_kl_uniform": health.klDivergenceToUniform,
            "embedding_std": HealthMetrics.embeddingStandardDeviation(studentEmbeddings),
        ])
    }
}
