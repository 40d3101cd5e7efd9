import Foundation
import SSLCore

/// iBOT's masked image modelling (Zhou et al., "iBOT: Image BERT Pre-Training with Online
/// Tokenizer", ICLR 2022; bytedance/ibot `main_ibot.py` `iBOTLoss`, `loader.py`
/// `ImageFolderMask`, `models/vision_transformer.py` `mask_model`).
///
/// Block-wise masks hide patches of each global crop from the student, whose embeddings are
/// replaced by a learned mask token; for every hidden patch, the student's patch token is
/// distilled toward the teacher's (unmasked) patch token through a patch head with its own
/// centre and teacher-temperature schedule. Each crop's loss is the mean over its images of
/// the mean over their hidden patches (images without one count 0), averaged over the crops.
///
/// How masking composes with the other tasks of a run — the rule: **the masked student pass is
/// iBOT's alone; every other task (`dino`, `selfpatch`, `koleo`, …) reads the shared, unmasked
/// pass, and the teacher never sees masks.** iBOT's own code (`main_ibot.py`) feeds its [CLS]
/// loss the masked global crops (`student(images[:2], mask=masks)`), and DINOv2 does the same;
/// here the image-level loss comes from `dino`, which reads the unmasked crops. The reasons:
/// the shared pass stays the same whatever tasks are mixed (so adding `ibot` to a recipe does
/// not change what `dino` or `selfpatch` learn from), no other task has to know about masks,
/// and SelfPatch's neighbour relations are not computed between mask tokens. The cost is one
/// extra student pass of the global crops, and with `dino,ibot` the [CLS] term differs from
/// iBOT's by reading unmasked crops. The masked pass's gradient reaches the backbone directly
/// rather than through the shared pass's cut, so the trainer's `ibot.backbone_gradient_norm`
/// reads 0.
///
/// The patch head: by default a separate head (DINOv2's `ibot.separate_head`; iBOT's own default
/// `shared_head=False` shares the head's MLP and separates only the last layer, while its teacher,
/// `shared_head_teacher=True`, shares all of it). With `--ibot.shared-head true` the patch head is
/// `dino`'s, student and teacher (iBOT's `shared_head=True` with `shared_head_teacher=True`:
/// `last_layer2 = last_layer`, `patch_out_dim` = `out_dim`): its parameters stay `dino.head.*`,
/// trained by both losses and frozen by `dino`'s `freeze-last-layer`, while the centre
/// (`center2`) and the teacher temperatures (`teacher_patch_temp`) stay this task's. The mask
/// token (`masked_embed`) is this task's parameter, passed to the backbone for the masked pass.
public final class IBOTTask: ConnectingTask {
    public struct Configuration: TaskConfiguration {
        /// The patch head (iBOT's `patch_out_dim` 8192) and its targets (`teacher_patch_temp`
        /// 0.07 after `warmup_teacher_patch_temp` 0.04 over 30 epochs).
        public var distillation: DistillationSettings = {
            var settings = DistillationSettings(outputDimension: 8192)
            settings.teacherTemperature = 0.07
            settings.warmupTeacherTemperature = 0.04
            settings.teacherTemperatureWarmup = .epochs(30)
            return settings
        }()
        /// Candidate masking ratios (`pred_ratio`); each image picks one at random.
        public var predictionRatios = [0.3]
        /// Half-widths of the uniform spread around each ratio (`pred_ratio_var`), one per ratio.
        public var predictionRatioSpreads = [0.0]
        /// Blocks' aspect ratios are log-uniform in [a, 1/a] (`pred_aspect_ratio` (0.3, 1/0.3)).
        public var aspectRatio = 0.3
        /// Epochs before masking starts (`pred_start_epoch`).
        public var startEpoch = 0
        /// Whether the patch head is DINO's (`shared_head`), instead of iBOT's own.
        public var sharedHead = false

        public init() {}

        enum CodingKeys: String, CodingKey {
            case predictionRatios = "pred-ratio"
            case predictionRatioSpreads = "pred-ratio-var"
            case aspectRatio = "pred-aspect-ratio"
            case startEpoch = "pred-start-epoch"
            case sharedHead = "shared-head"
        }

        // The distillation options sit beside this task's own, under the same names.
        public init(from decoder: Decoder) throws {
            distillation = try DistillationSettings(from: decoder)
            let container = try decoder.container(keyedBy: CodingKeys.self)
            predictionRatios = try container.decode([Double].self, forKey: .predictionRatios)
            predictionRatioSpreads = try container.decode([Double].self, forKey: .predictionRatioSpreads)
            aspectRatio = try container.decode(Double.self, forKey: .aspectRatio)
            startEpoch = try container.decode(Int.self, forKey: .startEpoch)
            sharedHead = try container.decode(Bool.self, forKey: .sharedHead)
        }

        public func encode(to encoder: Encoder) throws {
            try distillation.encode(to: encoder)
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(predictionRatios, forKey: .predictionRatios)
            try container.encode(predictionRatioSpreads, forKey: .predictionRatioSpreads)
            try container.encode(aspectRatio, forKey: .aspectRatio)
            try container.encode(startEpoch, forKey: .startEpoch)
            try container.encode(sharedHead, forKey: .sharedHead)
        }

        public static let help = DistillationSettings.help.merging([
            "out-dim": "Prototypes of the patch head.",
            "centering": "Teacher targets: ema (iBOT's patch centre) or sinkhorn (DINOv2's Sinkhorn-Knopp over the hidden patches of every process, no centre).",
            "pred-ratio": "Masking ratios, JSON list; each image picks one (iBOT's ViT-S recipe: [0, 0.3]).",
            "pred-ratio-var": "Spread of each ratio, JSON list of the same length (iBOT's ViT-S recipe: [0, 0.2]).",
            "pred-aspect-ratio": "Blocks' aspect ratios are log-uniform in [a, 1/a].",
            "pred-start-epoch": "Epochs before masking starts.",
            "shared-head": "Use dino's head as the patch head (iBOT's shared_head): dino's head options apply, ibot's head "
                + "options (out-dim … freeze-last-layer) do not; the centre and temperatures stay ibot's. Needs dino.",
        ]) { $1 }
    }

    public static let name = "ibot"
    public static let summary = "iBOT masked image modelling: hidden patches distilled from the teacher (Zhou et al., 2022)."

    public let configuration: Configuration
    /// The mask token, `[1, 1, dim]`, zero at first (`masked_embed`).
    public let maskToken: MaskToken
    public let heads: TaskHeads
    private let setup: TaskSetup
    /// The patch head with its own teacher copy, or DINO's head, with this task's centre and temperatures.
    private let patchDistillation: SharableDistillation

    public init(configuration: Configuration, setup: TaskSetup) throws {
        let ratios = configuration.predictionRatios, spreads = configuration.predictionRatioSpreads
        guard !ratios.isEmpty, ratios.count == spreads.count else {
            throw TaskConfigurationError("--ibot.pred-ratio and --ibot.pred-ratio-var need the same, non-zero number of values.")
        }
        guard zip(ratios, spreads).allSatisfy({ $1 >= 0 && $0 >= $1 && $0 + $1 < 1 }) else {
            throw TaskConfigurationError("Each --ibot.pred-ratio r needs 0 ≤ spread ≤ r and r + spread < 1 (--ibot.pred-ratio-var).")
        }
        guard configuration.aspectRatio > 0 else {
            throw TaskConfigurationError("--ibot.pred-aspect-ratio must be positive.")
        }
        if let crop = Set(setup.views.sizes.prefix(setup.views.globalCount)).first(where: { $0 / setup.backbone.patchSize < 3 }) {
            throw TaskConfigurationError(
                "ibot masks blocks of at least 1/3 of the patch grid's side; a global crop of \(crop) pixels with patch size "
                    + "\(setup.backbone.patchSize) has a grid smaller than 3×3.")
        }
        self.configuration = configuration
        self.setup = setup
        maskToken = MaskToken(dimension: setup.backbone.embedDimension)
        patchDistillation = try SharableDistillation(
            task: Self.name, settings: configuration.distillation, sharesHead: configuration.sharedHead,
            inputDimension: setup.backbone.embedDimension, setup: setup)
        heads = TaskHeads(patchDistillation.heads + [.head("mask", maskToken)])
    }

    /// The patch head (student and teacher), its centre and its teacher temperatures: iBOT's
    /// own, or DINO's head with iBOT's own centre and temperatures (`--ibot.shared-head`).
    public var distillation: Distillation { patchDistillation.distillation }

    /// With a shared head, takes the run's DINO task's head as the patch head.
    ///
    /// - Throws: ``ConfigurationError`` when the run has no `dino` task.
    public func connect(to tasks: [any PretextTask]) throws { try patchDistillation.connect(to: tasks) }

    public var requirements: TaskRequirements {
        TaskRequirements(needsPatchTokens: true)
    }

    public var state: [(name: String, tensor: Tensor)] { patchDistillation.state(centerName: "patch_center") }

    public func isFrozen(_ name: String, iteration: Int) -> Bool { patchDistillation.isFrozen(name, iteration: iteration) }

    public func loggedScheduleValues(iteration: Int) -> [String: Double] {
        ["teacher_patch_temperature": distillation.teacherTemperature(iteration: iteration)]
    }

    public func loss(_ step: TaskStep) -> TaskLoss {
        let forward = step.forward
        let globalCount = forward.globalViewCount, batch = forward.batchSize
        let images = Tensor.concatenate(Array(forward.views.prefix(globalCount)), axis: 0)
        let gridHeight = images.shape[2] / forward.patchSize, gridWidth = images.shape[3] / forward.patchSize
        // Masks follow from the seed, the iteration and the rank, so a resumed run draws the
        // same ones and every process its own.
        var generator = step.generator()
        let masks = (0..<(globalCount * batch)).map { _ in
            masking.mask(height: gridHeight, width: gridWidth, epoch: step.epoch, generator: &generator)
        }
        let patches = gridHeight * gridWidth
        let hidden = Tensor(shape: [globalCount * batch, patches, 1], elements: masks.flatMap { $0.map { $0 ? Float(1) : 0 } })
        let student = forward.maskedStudent(images, masking: (hidden, maskToken.token)).outputPatches
        let dimension = student.shape[2]
        let studentLogits = distillation.head(student.reshaped([-1, dimension]))
        let teacherLogits = GradientMode.withoutGradient {
            distillation.teacherHead(
                Tensor.concatenate((0..<globalCount).map { forward.teacher($0).outputPatches }).reshaped([-1, dimension]))
        }
        let targets = Self.patchTargets(
            teacherLogits, hidden: Array(masks.joined()), distillation: distillation, iteration: step.iteration,
            collective: step.collective)
        let loss = Self.maskedPatchLoss(
            studentLogits: studentLogits.reshaped([globalCount * batch, patches, -1]),
            targets: targets.reshaped([globalCount * batch, patches, -1]),
            hidden: hidden.reshaped([globalCount * batch, patches]), crops: globalCount,
            studentTemperature: distillation.settings.studentTemperature)
        distillation.targets.update(with: teacherLogits, collective: step.collective)
        let hiddenFraction = Double(masks.joined().filter { $0 }.count) / Double(masks.count * patches)
        return TaskLoss(total: loss, terms: ["masked_fraction": hiddenFraction])
    }

    /// The teacher's targets for the patch rows of `teacherLogits` (`[rows, K]`; `hidden` marks
    /// the rows of hidden patches), as constants. With an EMA centre, every row's (iBOT: the
    /// loss reads only the hidden ones, the centre follows all). With Sinkhorn-Knopp, only the
    /// hidden rows are normalised, together with those of every process (DINOv2's
    /// `sinkhorn_knopp_teacher` over the masked patch tokens), and the others are 0.
    public static func patchTargets(
        _ teacherLogits: Tensor, hidden: [Bool], distillation: Distillation, iteration: Int, collective: Collective
    ) -> Tensor {
        guard distillation.settings.centering == .sinkhorn else {
            return distillation.teacherTargets(teacherLogits, iteration: iteration, collective: collective)
        }
        let rows = hidden.indices.filter { hidden[$0] }
        let hiddenTargets = distillation.teacherTargets(teacherLogits.gatherRows(rows), iteration: iteration, collective: collective)
        let prototypes = teacherLogits.shape[1]
        let targets = Tensor.zeros(teacherLogits.shape)
        for (position, row) in rows.enumerated() {
            (targets.storage.base + row * prototypes).update(from: hiddenTargets.storage.base + position * prototypes, count: prototypes)
        }
        return targets
    }

    /// The patch term of `iBOTLoss.forward` (the `v == q` pairs): for each of `crops` chunks of
    /// rows of `studentLogits` and `targets` (`[images, patches, K]`), the cross-entropy of every
    /// patch, summed over the patches `hidden` marks (`[images, patches]`, 0 or 1), divided by
    /// their number (at least 1), averaged over the chunk's images, then over the chunks.
    public static func maskedPatchLoss(
        studentLogits: Tensor, targets: Tensor, hidden: Tensor, crops: Int, studentTemperature: Double
    ) -> Tensor {
        let perPatch = studentLogits.softCrossEntropy(targets: targets, temperature: Float(studentTemperature))
        let counts = GradientMode.withoutGradient { hidden.sum(axes: [1]).clamped(min: 1) }
        let perImage = (perPatch * hidden).sum(axes: [1]) / counts
        let terms = perImage.chunked(crops).map { $0.mean() }
        return terms.dropFirst().reduce(terms[0], +) / Float(crops)
    }

    private var masking: BlockMasking {
        BlockMasking(
            ratios: configuration.predictionRatios, spreads: configuration.predictionRatioSpreads,
            aspectRatio: configuration.aspectRatio, startEpoch: configuration.startEpoch)
    }
}

/// The learned token that replaces hidden patch embeddings (iBOT's `masked_embed`).
public final class MaskToken: Module {
    /// `[1, 1, dim]`.
    public let token: Tensor

    public init(dimension: Int) {
        token = Tensor.zeros([1, 1, dimension])
        token.requiresGradient = true
    }

    public override var ownParameters: [(name: String, tensor: Tensor)] { [("masked_embed", token)] }
}

/// iBOT's block-wise masks (`ImageFolderMask` with `pred_shape='block'`, after BEiT's
/// `MaskingGenerator`): rectangles of random area and aspect ratio are added until the target
/// number of patches is hidden or no rectangle fits.
public struct BlockMasking: Sendable {
    public var ratios: [Double]
    public var spreads: [Double]
    public var aspectRatio: Double
    public var startEpoch: Int

    public init(ratios: [Double], spreads: [Double], aspectRatio: Double, startEpoch: Int) {
        self.ratios = ratios
        self.spreads = spreads
        self.aspectRatio = aspectRatio
        self.startEpoch = startEpoch
    }

    /// `get_pred_ratio`: 0 before the start epoch; otherwise, for each candidate, a draw from
    /// U(r − spread, r + spread) (r itself without spread), and one of these picked at random.
    public func ratio(epoch: Int, generator: inout RandomGenerator) -> Double {
        guard epoch >= startEpoch else { return 0 }
        let candidates = zip(ratios, spreads).map { ratio, spread in
            spread > 0 ? uniform(ratio - spread, ratio + spread, &generator) : ratio
        }
        return candidates[Int.random(in: 0..<candidates.count, using: &generator)]
    }

    /// One image's mask over a `height × width` patch grid, row-major, `true` for hidden.
    public func mask(height: Int, width: Int, epoch: Int, generator: inout RandomGenerator) -> [Bool] {
        let target = ratio(epoch: epoch, generator: &generator) * Double(height * width)
        var mask = [Bool](repeating: false, count: height * width)
        let smallest = Double((min(height, width) / 3) * (min(height, width) / 3))
        var count = 0.0
        while count < target {
            let room = target - count
            var added = 0
            for _ in 0..<10 {
                let area = uniform(smallest, room, &generator)
                let aspect = Foundation.exp(uniform(Foundation.log(aspectRatio), Foundation.log(1 / aspectRatio), &generator))
                let h = Int((area * aspect).squareRoot().rounded(.toNearestOrEven))
                let w = Int((area / aspect).squareRoot().rounded(.toNearestOrEven))
                if w < width && h < height {
                    let top = Int.random(in: 0...(height - h), using: &generator)
                    let left = Int.random(in: 0...(width - w), using: &generator)
                    let block = (top..<(top + h)).flatMap { row in (left..<(left + w)).map { row * width + $0 } }
                    let fresh = block.filter { !mask[$0] }
                    if !fresh.isEmpty && Double(fresh.count) <= room {
                        for index in fresh { mask[index] = true }
                        added += fresh.count
                    }
                }
                if added > 0 { break }
            }
            if added == 0 { break }
            count += Double(added)
        }
        return mask
    }

    /// Python's `random.uniform(a, b)`: `a + (b − a)·u`, also when `b < a`.
    private func uniform(_ a: Double, _ b: Double, _ generator: inout RandomGenerator) -> Double {
        a + (b - a) * generator.nextUniformDouble()
    }
}
