import SSLCore

/// SelfPatch: each patch's most similar neighbouring patches are its positives (Yun et al.,
/// CVPR 2022; spec §3).
///
/// For every view, the teacher picks each patch's `k` most similar of its 8 grid neighbours
/// (cosine of the raw last-block tokens, the grid wrapping around), summarises them with a
/// class-attention head, and the student's own token for that patch is distilled toward that
/// summary through a patch-level DINO head. Works for any patch size and crop size whose grid
/// is at least 3×3.
///
/// With `image-embedding` on, the aggregation head's class token over all patches also serves
/// as the image embedding of other tasks (`dino`), which reproduces the original recipe on a
/// backbone without class token and final norm.
public final class SelfPatchTask: PretextTask {
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
            "aggregation-blocks": "Class-attention blocks of the aggregation head.",
            "image-embedding": "Provide the aggregation head's class token as the image embedding (original SelfPatch).",
        ]) { $1 }
    }

    public static let name = "selfpatch"
    public static let summary = "SelfPatch: neighbouring patches as positives for patch-level distillation (Yun et al., 2022)."
    /// λ of the paper.
    public static let defaultWeight = 0.1

    public let configuration: Configuration
    public let aggregator: PatchAggregationHead
    public let teacherAggregator: PatchAggregationHead
    /// The patch head (`p_head`) and its targets.
    public let distillation: Distillation
    public let heads: Module
    public let teacherHeads: Module?
    private var neighborTables: [String: NeighborTable] = [:]

    public init(configuration: Configuration, setup: TaskSetup) throws {
        let grids = Set(setup.views.sizes).map { $0 / setup.backbone.patchSize }
        if let small = grids.filter({ $0 < 3 }).min() {
            throw TaskConfigurationError(
                "selfpatch needs patch grids of at least 3×3 (8 neighbours); a crop of \(small * setup.backbone.patchSize) "
                    + "pixels with patch size \(setup.backbone.patchSize) gives \(small)×\(small). Use larger crops or a smaller patch.")
        }
        guard (1...8).contains(configuration.neighbors) else {
            throw TaskConfigurationError("--selfpatch.k-num must be between 1 and 8, got \(configuration.neighbors).")
        }
        self.configuration = configuration
        var generator = setup.generator(for: Self.name)
        let dimension = setup.backbone.embedDimension, headCount = setup.backbone.heads
        aggregator = PatchAggregationHead(
            dimension: dimension, heads: headCount, blocks: configuration.aggregationBlocks, generator: &generator)
        teacherAggregator = PatchAggregationHead(
            dimension: dimension, heads: headCount, blocks: configuration.aggregationBlocks, generator: &generator)
        teacherAggregator.copyState(from: aggregator)
        distillation = Distillation(settings: configuration.distillation, inputDimension: dimension, generator: &generator)
        heads = ModuleDictionary([("ca_head", aggregator), ("p_head", distillation.head)])
        teacherHeads = ModuleDictionary([("ca_head", teacherAggregator), ("p_head", distillation.teacherHead)])
    }

    public var requirements: TaskRequirements {
        TaskRequirements(needsPatchTokens: true, needsTeacher: true, providesImageEmbedding: configuration.imageEmbedding)
    }

    public var state: [(name: String, tensor: Tensor)] { [("patch_center", distillation.targets.center)] }

    public func isFrozen(_ name: String, epoch: Int) -> Bool { distillation.isFrozen(name, epoch: epoch) }

    public func scheduleValues(epoch: Int) -> [String: Double] {
        ["teacher_temperature": distillation.teacherTemperature(epoch: epoch)]
    }

    public func prepare(_ forward: SharedForward) {
        guard configuration.imageEmbedding else { return }
        forward.setImageEmbeddingProvider { [aggregator, teacherAggregator] features, role in
            let head = role == .student ? aggregator : teacherAggregator
            return head.summary(of: features.lastBlockPatches)
        }
    }

    public func loss(_ step: TaskStep) -> TaskLoss {
        let forward = step.forward
        var total: Tensor?
        var teacherLogits: [Tensor] = []
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
            let term = distillation.loss(studentLogits: studentLogits, targets: distillation.teacherTargets(logits, epoch: step.epoch))
            total = total.map { $0 + term } ?? term
        }
        let loss = total! / Float(forward.views.count)
        distillation.targets.update(with: teacherLogits, collective: step.collective)
        return TaskLoss(total: loss)
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
public final class PatchAggregationHead: Module {
    /// `[1, 1, dim]`.
    public let classToken: Tensor
    public let blocks: [ClassAttentionBlock]
    public let norm: LayerNorm

    public init(dimension: Int, heads: Int, blocks count: Int, generator: inout RandomGenerator) {
        classToken = Tensor.truncatedNormal([1, 1, dimension], standardDeviation: 0.02, generator: &generator)
        classToken.requiresGradient = true
        blocks = (0..<count).map { _ in ClassAttentionBlock(features: dimension, heads: heads, generator: &generator) }
        norm = LayerNorm(features: dimension)
    }

    public override var ownParameters: [(name: String, tensor: Tensor)] { [("cls_token", classToken)] }

    public override var submodules: [(name: String, module: Module)] {
        blocks.enumerated().map { ("cls_blocks.\($0.offset)", $0.element as Module) } + [("norm", norm)]
    }

    /// The class token after attending over `tokens` (`[sequences, length, dim]`) through every
    /// block, normalised: `[sequences, dim]`.
    public func summary(of tokens: Tensor) -> Tensor {
        let sequences = tokens.shape[0], dimension = tokens.shape[2]
        var token = classToken + Tensor.zeros([sequences, 1, dimension])
        for block in blocks { token = block(tokens: tokens, classToken: token) }
        return norm(token).reshaped([sequences, dimension])
    }
}

/// The 8 neighbours of every cell of a patch grid in a 3×3 window that wraps around the grid's
/// borders (a torus), each row listed in ascending flat index as the original code does.
public struct NeighborTable: Sendable {
    public let height: Int, width: Int
    /// `[cells][8]` flat neighbour indices.
    public let neighbors: [[Int]]

    public init(height: Int, width: Int) {
        self.height = height
        self.width = width
        neighbors = (0..<(height * width)).map { cell in
            let row = cell / width, column = cell % width
            var result: [Int] = []
            for dr in -1...1 {
                for dc in -1...1 where dr != 0 || dc != 0 {
                    result.append(((row + dr + height) % height) * width + (column + dc + width) % width)
                }
            }
            return result.sorted()
        }
    }

    /// The cosine similarity of every token of `patches` (`[batch, cells, dim]`) to each of its
    /// 8 neighbours: `[batch, cells, 8]`, in the table's neighbour order.
    public func similarities(_ patches: Tensor) -> Tensor {
        let batch = patches.shape[0], cells = patches.shape[1], dimension = patches.shape[2]
        precondition(cells == height * width, "NeighborTable \(height)×\(width) applied to \(cells) patches.")
        let normalized = GradientMode.withoutGradient { patches.l2Normalized() }
        let result = Tensor(uninitializedShape: [batch, cells, 8])
        let x = normalized.storage.base, s = result.storage.base
        for b in 0..<batch {
            for cell in 0..<cells {
                let anchor = x + (b * cells + cell) * dimension
                for (slot, neighbor) in neighbors[cell].enumerated() {
                    let other = x + (b * cells + neighbor) * dimension
                    var dot: Float = 0
                    for d in 0..<dimension { dot += anchor[d] * other[d] }
                    s[(b * cells + cell) * 8 + slot] = dot
                }
            }
        }
        return result
    }

    /// For each token of `patches` (`[batch, cells, dim]`), the flat row indices (into
    /// `patches` viewed as `[batch·cells, dim]`) of its `count` neighbours with the highest
    /// cosine similarity, most similar first.
    public func mostSimilarNeighbors(_ patches: Tensor, count: Int) -> [Int] {
        let cells = patches.shape[1]
        let slots = similarities(patches).topK(count).indices
        return slots.enumerated().map { position, slot in
            let row = position / count
            return (row / cells) * cells + neighbors[row % cells][slot]
        }
    }
}
