import SSLCore

/// DINO: self-distillation with no labels (Caron et al., 2021; github facebookresearch/dino).
///
/// The student's image embedding of every view is trained to match the teacher's centred,
/// sharpened prototype distribution of every other global view.
public final class DINOTask: DistillingTask {
    public struct Configuration: TaskConfiguration {
        public var distillation = DistillationSettings(outputDimension: 65536)
        /// Update the centre with the teacher's outputs on every crop, as SelfPatch does,
        /// instead of the global crops only.
        public var centerOverAllCrops = false
        /// The student crops the teacher's targets are distilled into.
        public var studentCrops = StudentCrops.all

        public init() {}

        enum CodingKeys: String, CodingKey {
            case centerOverAllCrops = "center-all-crops"
            case studentCrops = "student-crops"
        }

        // The distillation options sit beside this task's own, under the same names.
        public init(from decoder: Decoder) throws {
            distillation = try DistillationSettings(from: decoder)
            let container = try decoder.container(keyedBy: CodingKeys.self)
            centerOverAllCrops = try container.decode(Bool.self, forKey: .centerOverAllCrops)
            studentCrops = try container.decode(StudentCrops.self, forKey: .studentCrops)
        }

        public func encode(to encoder: Encoder) throws {
            try distillation.encode(to: encoder)
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(centerOverAllCrops, forKey: .centerOverAllCrops)
            try container.encode(studentCrops, forKey: .studentCrops)
        }

        public static let help = DistillationSettings.help.merging([
            "center-all-crops": "Update the centre with teacher outputs of all crops (SelfPatch) rather than the global ones.",
            "student-crops": "Student crops trained toward the teacher: all (DINO) or global (the local crops are left to other tasks).",
        ]) { $1 }
    }

    /// Which of the student's crops DINO's loss reads.
    public enum StudentCrops: String, NamedOptionValue {
        /// Every crop, global and local, as in DINO.
        case all
        /// The global crops only: each distilled into the other, so a run can keep its local
        /// crops for other objectives (copy-paste canvases, say) without DINO's image embedding
        /// learning from them.
        case global
    }

    public static let name = "dino"
    public static let summary = "DINO self-distillation on the image embedding (Caron et al., 2021)."

    public let configuration: Configuration
    public let distillation: Distillation
    public let heads: TaskHeads

    public init(configuration: Configuration, setup: TaskSetup) throws {
        guard setup.views.globalCount >= 2 else {
            throw TaskConfigurationError("dino needs 2 global crops (it distils each global view into the others).")
        }
        self.configuration = configuration
        var generator = setup.generator(for: Self.name)
        distillation = try Distillation(
            task: Self.name, settings: configuration.distillation, inputDimension: setup.backbone.embedDimension, setup: setup,
            generator: &generator)
        heads = TaskHeads([.head("head", distillation.head, teacher: distillation.teacherHead)])
    }

    public var requirements: TaskRequirements {
        TaskRequirements(minimumGlobalViews: 2, needsImageEmbedding: true)
    }

    public func loss(_ step: TaskStep) -> TaskLoss {
        let forward = step.forward
        let viewCount = forward.views.count, globalCount = forward.globalViewCount, batch = forward.batchSize
        let studentViews = configuration.studentCrops == .all ? viewCount : globalCount
        let studentEmbeddings = Tensor.concatenate((0..<studentViews).map { forward.imageEmbedding($0, role: .student) })
        let studentLogits = distillation.head(studentEmbeddings)
        let teacherViews = configuration.centerOverAllCrops ? viewCount : globalCount
        let teacherLogits = GradientMode.withoutGradient {
            distillation.teacherHead(Tensor.concatenate((0..<teacherViews).map { forward.imageEmbedding($0, role: .teacher) }))
        }
        let probabilities = distillation.teacherTargets(
            teacherLogits.sliced(0..<(globalCount * batch)), iteration: step.iteration, collective: step.collective)
        let studentBlocks = studentLogits.chunked(studentViews)
        let teacherBlocks = probabilities.chunked(globalCount)
        var total: Tensor?
        var pairs = 0
        for (target, teacherBlock) in teacherBlocks.enumerated() {
            for (view, studentBlock) in studentBlocks.enumerated() where view != target {
                let term = distillation.loss(studentLogits: studentBlock, targets: teacherBlock)
                total = total.map { $0 + term } ?? term
                pairs += 1
            }
        }
        let loss = total! / Float(pairs)
        distillation.targets.update(with: teacherLogits, collective: step.collective)
        return TaskLoss(total: loss, health: TaskHealth(
            teacher: TeacherDistribution(probabilities: probabilities),
            embeddingSpread: EmbeddingSpread(embeddings: studentEmbeddings)))
    }
}
