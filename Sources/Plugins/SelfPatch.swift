import SSLCore

/// SelfPatch: each patch's most similar neighbouring patches are its positives (Yun et al.,
/// CVPR 2022; github alinlab/SelfPatch).
///
/// For every view, the teacher picks each patch's `k` most similar of its 8 grid neighbours
/// (cosine of the raw last-block tokens, the grid wrapping around), summarises them, and the
/// student's own token for that patch is distilled toward that summary through a patch-level
/// DINO head. Works for any patch size and crop size whose grid is at least 3×3 (a requirement
/// the trainer checks).
///
/// With `image-embedding` on (the original recipe), the summary is the class token of a
/// class-attention head, and the same head's class token over all patches serves as the image
/// embedding of other tasks (`dino`); that image-level loss is what trains the head. Without
/// it nothing would train class attention, so the summary is the mean of the chosen
/// neighbours (through the head's final norm, like the student's tokens).
public final class SelfPatchTask: DistillingTask {
    public struct Configuration: TaskConfiguration {
        /// The patch head (K_p prototypes) and its targets.
        public var distillation = DistillationSettings(outputDimension: 4096)
        public var neighbors = 4
        public var aggregationBlocks = 2
        public var imageEmbedding = false

        public init() {}

        enum CodingKeys: String, CodingKey {
            case neighbors = "k-num"
            case aggregationBlocks = "aggregation-blocks"
            case imageEmbedding = "image-embedding"
        }

        // The distillation options sit beside this task's own, under the same names.
        public init(from decoder: Decoder) throws {
            distillation = try DistillationSettings(from: decoder)
            let container = try decoder.container(keyedBy: CodingKeys.self)
            neighbors = try container.decode(Int.self, forKey: .neighbors)
            aggregationBlocks = try container.decode(Int.self, forKey: .aggregationBlocks)
            imageEmbedding = try container.decode(Bool.self, forKey: .imageEmbedding)
        }

        public func encode(to encoder: Encoder) throws {
            try distillation.encode(to: encoder)
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(neighbors, forKey: .neighbors)
            try container.encode(aggregationBlocks, forKey: .aggregationBlocks)
            try container.encode(imageEmbedding, forKey: .imageEmbedding)
        }

        public static let help = DistillationSettings.help.merging([
            "out-dim": "Prototypes K_p of the patch head.",
            "k-num": "Positives per patch: the most similar of its 8 neighbours.",
            "aggregation-blocks": "Class-attention blocks of the aggregation head (with image-embedding; otherwise neighbours are averaged).",
            "image-embedding": "Provide the aggregation head's class token as the image embedding (original SelfPatch).",
        ]) { $1 }
    }

    public static let name = "selfpatch"
    public static let summary = "SelfPatch: neighbouring patches as positives for patch-level distillation (Yun et al., 2022)."
    /// λ of the paper.
    public static let defaultWeight = 0.1
    /// DINO's multi-crop with SelfPatch's scales (`main_selfpatch.py`): global 0.25…1, local 0.05…0.25.
    public static let augmentation: AugmentationRecipe? = AugmentationRecipe(
        family: .multiCrop, globalScale: 0.25...1, localScale: 0.05...0.25)

    public let configuration: Configuration
    public let aggregator: PatchAggregationHead
    public let teacherAggregator: PatchAggregationHead
    /// The patch head (`p_head`) and its targets.
    public let distillation: Distillation
    public let heads: TaskHeads
    private var neighborTables: [String: NeighborTable] = [:]

    public init(configuration: Configuration, setup: TaskSetup) throws {
        guard (1...8).contains(configuration.neighbors) else {
            throw TaskConfigurationError("--selfpatch.k-num must be between 1 and 8, got \(configuration.neighbors).")
        }
        if configuration.imageEmbedding && configuration.aggregationBlocks < 1 {
            throw TaskConfigurationError(
                "--selfpatch.image-embedding needs at least one class-attention block (--selfpatch.aggregation-blocks).")
        }
        self.configuration = configuration
        var generator = setup.generator(for: Self.name)
        let dimension = setup.backbone.embedDimension, headCount = setup.backbone.heads
        let blocks = configuration.imageEmbedding ? configuration.aggregationBlocks : 0
        aggregator = PatchAggregationHead(dimension: dimension, heads: headCount, blocks: blocks, generator: &generator)
        teacherAggregator = PatchAggregationHead(dimension: dimension, heads: headCount, blocks: blocks, generator: &generator)
        distillation = try Distillation(
            task: Self.name, settings: configuration.distillation, inputDimension: dimension, setup: setup, generator: &generator)
        heads = TaskHeads([
            .head("ca_head", aggregator, teacher: teacherAggregator),
            .head("p_head", distillation.head, teacher: distillation.teacherHead),
        ])
    }

    public var patchNeighborCount: Int? { configuration.neighbors }

    public var requirements: TaskRequirements {
        TaskRequirements(
            needsPatchTokens: true, providesImageEmbedding: configuration.imageEmbedding, minimumPatchGrid: 3)
    }

    public static let centerName = "patch_center"

    public func imageEmbedding(of features: BackboneFeatures, role: NetworkRole) -> Tensor? {
        guard configuration.imageEmbedding else { return nil }
        return (role == .student ? aggregator : teacherAggregator).summary(of: features.lastBlockPatches)
    }

    public func loss(_ step: TaskStep) -> TaskLoss {
        let forward = step.forward
        var total: Tensor?
        var teacherLogits: [Tensor] = []
        // The patch targets of the first view show whether the patch teacher collapses.
        var health = TaskHealth()
        for view in 0..<forward.views.count {
            let teacherFeatures = forward.teacher(view)
            let table = neighborTable(height: teacherFeatures.gridHeight, width: teacherFeatures.gridWidth)
            let teacherPatches = teacherFeatures.lastBlockPatches
            let logits = GradientMode.withoutGradient { () -> Tensor in
                let chosen = table.mostSimilarNeighbors(teacherPatches, count: configuration.neighbors)
                let dimension = teacherPatches.shape[2]
                let neighbors = teacherPatches.reshaped([-1, dimension]).gatherRows(chosen)
                    .reshaped([-1, configuration.neighbors, dimension])
                return distillation.teacherHead(teacherAggregator.summary(of: neighbors))
            }
            teacherLogits.append(logits)
            let studentPatches = forward.student(view).lastBlockPatches
            let studentLogits = distillation.head(aggregator.norm(studentPatches).reshaped([-1, studentPatches.shape[2]]))
            let targets = distillation.teacherTargets(logits, iteration: step.iteration, collective: step.collective)
            if view == 0 { health.teacher = TeacherDistribution(probabilities: targets) }
            let term = distillation.loss(studentLogits: studentLogits, targets: targets)
            total = total.map { $0 + term } ?? term
        }
        let loss = total! / Float(forward.views.count)
        distillation.targets.update(with: teacherLogits, collective: step.collective)
        return TaskLoss(total: loss, health: health)
    }

    private func neighborTable(height: Int, width: Int) -> NeighborTable {
        let key = "\(height)x\(width)"
        if let table = neighborTables[key] { return table }
        let table = NeighborTable(height: height, width: width)
        neighborTables[key] = table
        return table
    }
}

/// SelfPatch's aggregation head (`ca_head`): a learned class token that reads a set of tokens
/// through class-attention blocks, then a final LayerNorm shared with the student's patch path.
/// With no blocks it has no class token and summarises by the mean of the tokens.
public final class PatchAggregationHead: Module {
    /// `[1, 1, dim]`, when the head has class-attention blocks.
    public let classToken: Tensor?
    public let blocks: [ClassAttentionBlock]
    public let norm: LayerNorm

    public init(dimension: Int, heads: Int, blocks count: Int, generator: inout RandomGenerator) {
        if count > 0 {
            let token = Tensor.truncatedNormal([1, 1, dimension], standardDeviation: 0.02, generator: &generator)
            token.requiresGradient = true
            classToken = token
        } else {
            classToken = nil
        }
        blocks = (0..<count).map { _ in ClassAttentionBlock(features: dimension, heads: heads, generator: &generator) }
        norm = LayerNorm(features: dimension)
    }

    public override var ownParameters: [(name: String, tensor: Tensor)] { classToken.map { [("cls_token", $0)] } ?? [] }

    public override var submodules: [(name: String, module: Module)] {
        blocks.enumerated().map { ("cls_blocks.\($0.offset)", $0.element as Module) } + [("norm", norm)]
    }

    /// The summary of each sequence of `tokens` (`[sequences, length, dim]`), normalised:
    /// `[sequences, dim]`. It is the class token after attending over the tokens through every
    /// block, or the tokens' mean when the head has no blocks.
    public func summary(of tokens: Tensor) -> Tensor {
        let sequences = tokens.shape[0], dimension = tokens.shape[2]
        guard let classToken else { return norm(tokens.mean(axes: [1])) }
        var token = classToken + Tensor.zeros([sequences, 1, dimension])
        for block in blocks { token = block(tokens: tokens, classToken: token) }
        return norm(token).reshaped([sequences, dimension])
    }
}
