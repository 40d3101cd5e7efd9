import SSLCore

/// Copy-paste distillation: the student's patch tokens of a garment pasted among others, pooled
/// over the patches the pasted garment covers, are distilled toward the teacher's image embedding
/// of the garment alone.
///
/// The local crops are pasted onto scene-like canvases among distractor garments (``RandomPaste``,
/// `--paste`), as CP² (Wang et al., "CP²: Copy-Paste Contrastive Pretraining for Semantic
/// Segmentation", ECCV 2022) pastes foregrounds onto other images and InsLoc (Yang et al.,
/// "Instance Localization for Self-supervised Detection Pretraining", CVPR 2021) pools the
/// pasted instance's features by its known box. Each crop's geometry says which patches lie on
/// the pasted garment (``CropGeometry/shownSourcePoint(x:y:)``; a crop that was not pasted shows
/// its garment in every patch). Their student tokens, averaged, go through the task's DINO head,
/// and the target is DINO's: the teacher's centred, sharpened prototype distribution of its class
/// token (or provided image embedding) of every global crop of the same image, by cross-entropy.
/// The patch tokens on a garment in a scene thereby have to say what the garment is.
public final class PastedDistillationTask: DistillingTask, ConnectingTask {
    /// What the student distils toward the teacher's view of the garment alone.
    public enum Pooling: String, NamedOptionValue {
        /// The mean of the patch tokens on the pasted garment, one embedding per crop (InsLoc's
        /// pooled instance feature).
        case garment
        /// Every patch token on the pasted garment on its own (CP²'s dense loss, where each
        /// foreground pixel's embedding is pulled toward the pasted image's).
        case patch
        /// Every patch token on any garment of the canvas on its own, toward the teacher's view of
        /// the image that garment is: the pasted one or a distractor, which in training is another
        /// image of the batch (``RandomPaste``). Patches on the background are left out.
        case scene
    }

    public struct Configuration: TaskConfiguration {
        /// Whether the garment's patch tokens are distilled pooled or one by one.
        public var pooling = Pooling.garment
        /// Whether the head is `dino`'s (student and teacher, as `--ibot.shared-head`), so that
        /// the garment's tokens are read by the prototypes DINO trains, instead of a head of its own.
        public var sharedHead = false
        /// The head and its targets.
        public var distillation: DistillationSettings = {
            var settings = DistillationSettings(outputDimension: 256)
            settings.hiddenDimension = 512
            settings.bottleneckDimension = 128
            settings.lastLayerFreeze = .epochs(0)
            return settings
        }()

        public init() {}

        // The distillation's options are the task's, under the same names.
        enum CodingKeys: String, CodingKey {
            case pooling
            case sharedHead = "shared-head"
        }

        public init(from decoder: Decoder) throws {
            distillation = try DistillationSettings(from: decoder)
            let container = try decoder.container(keyedBy: CodingKeys.self)
            pooling = try container.decode(Pooling.self, forKey: .pooling)
            sharedHead = try container.decode(Bool.self, forKey: .sharedHead)
        }

        public func encode(to encoder: Encoder) throws {
            try distillation.encode(to: encoder)
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(pooling, forKey: .pooling)
            try container.encode(sharedHead, forKey: .sharedHead)
        }

        public static let help = DistillationSettings.help.merging([
            "out-dim": "Prototypes K of the pasted-garment head.",
            "pooling": "garment (the mean of the patch tokens on the pasted garment, as InsLoc), patch (each of them on its own, "
                + "as CP²) or scene (each patch on any garment of the canvas, toward the teacher's view of that garment's image).",
            "shared-head": "Use dino's head (student and teacher) instead of one of its own; dino's head options apply, pastedino's "
                + "centre and temperatures stay its own.",
        ]) { $1 }
    }

    public static let name = "pastedino"
    public static let summary =
        "Distils the student's tokens pooled over a garment pasted among others into the teacher's view of it alone (after CP² and InsLoc)."

    public let configuration: Configuration
    public let heads: TaskHeads
    /// The head of the garment's tokens, its own or `dino`'s, with the task's own targets.
    private let garmentDistillation: SharableDistillation

    public init(configuration: Configuration, setup: TaskSetup) throws {
        self.configuration = configuration
        garmentDistillation = try SharableDistillation(
            task: Self.name, settings: configuration.distillation, sharesHead: configuration.sharedHead,
            inputDimension: setup.backbone.embedDimension, setup: setup)
        heads = TaskHeads(garmentDistillation.heads)
    }

    /// The head of the garment's tokens (its own, or `dino`'s with `--pastedino.shared-head`) and
    /// the task's own targets.
    public var distillation: Distillation { garmentDistillation.distillation }

    /// With a shared head, takes the run's `dino` task's head.
    ///
    /// - Throws: ``ConfigurationError`` when the run has no `dino` task.
    public func connect(to tasks: [any PretextTask]) throws { try garmentDistillation.connect(to: tasks) }

    public var state: [(name: String, tensor: Tensor)] { garmentDistillation.state(centerName: Self.centerName) }

    public func isFrozen(_ name: String, iteration: Int) -> Bool { garmentDistillation.isFrozen(name, iteration: iteration) }

    public var requirements: TaskRequirements {
        TaskRequirements(
            minimumLocalViews: 1, needsPatchTokens: true, needsImageEmbedding: true, needsTeacher: true, needsCropGeometry: true)
    }

    public func loss(_ step: TaskStep) -> TaskLoss {
        let forward = step.forward
        let globalCount = forward.globalViewCount, localCount = forward.views.count - globalCount
        let teacherLogits = GradientMode.withoutGradient {
            distillation.teacherHead(Tensor.concatenate((0..<globalCount).map { forward.imageEmbedding($0, role: .teacher) }))
        }
        let probabilities = distillation.teacherTargets(teacherLogits, iteration: step.iteration, collective: step.collective)
        distillation.targets.update(with: teacherLogits, collective: step.collective)

        var pooledTokens: [Tensor] = [], pooledImages: [Int] = []
        var pastedCrops = 0, pooledCrops = 0, pooledPatches = 0
        for view in globalCount..<forward.views.count {
            let student = forward.student(view)
            let grid = PatchGrid(of: student)
            let crops = forward.cropGeometry(view)
            pastedCrops += crops.filter { $0.pastedBox != nil }.count
            // The image each patch is distilled toward (its crop's, or with `scene` pooling that of
            // the garment it shows), or nil.
            let patchImages = crops.enumerated().map { image, crop in
                configuration.pooling == .scene
                    ? Self.shownImages(of: crop, image: image, batchSize: forward.batchSize, grid: grid)
                    : Self.garmentPatches(of: crop, grid: grid).map { $0 ? image : nil }
            }
            pooledPatches += patchImages.joined().filter { $0 != nil }.count
            pooledCrops += patchImages.filter { $0.contains { $0 != nil } }.count
            // One region per crop (its garment), or one per patch on a garment.
            let regions = patchImages.map { images in
                images.enumerated().map { patch, image in image.map { _ in configuration.pooling == .garment ? 0 : patch } }
            }
            let pooling = RegionPooling(regions: regions, patchesPerImage: grid.count)
            guard !pooling.rows.isEmpty else { continue }
            let tokens = student.outputPatches.reshaped([-1, student.outputPatches.shape[2]])
            pooledTokens.append(pooling.matrix.matmul(tokens))
            pooledImages += pooling.rows.map { row in
                configuration.pooling == .garment ? row.image : patchImages[row.image][row.region]!
            }
        }
        let crops = Double(localCount * forward.batchSize)
        let terms = [
            "pasted_crop_fraction": Double(pastedCrops) / crops,
            "pooled_crop_fraction": Double(pooledCrops) / crops,
            "pooled_patches": pooledCrops == 0 ? 0 : Double(pooledPatches) / Double(pooledCrops),
        ]
        let health = TaskHealth(teacher: TeacherDistribution(probabilities: probabilities))
        guard !pooledTokens.isEmpty else {
            // No crop shows its garment anywhere: a zero that keeps the graph.
            return TaskLoss(total: forward.student(globalCount).outputPatches.sum() * 0, terms: terms, health: health)
        }
        let studentLogits = distillation.head(Tensor.concatenate(pooledTokens))
        // Every global crop's target for every pooled token of its image: the mean over (global
        // crop, local crop, image) triples, or with `patch` pooling over (global crop, patch on a
        // pasted garment) pairs.
        let losses = probabilities.chunked(globalCount).map { targets in
            distillation.loss(studentLogits: studentLogits, targets: targets.gatherRows(pooledImages))
        }
        return TaskLoss(total: losses.dropFirst().reduce(losses[0], +) / Float(globalCount), terms: terms, health: health)
    }

    /// The batch image each patch of crop `image`'s view (row-major over `grid`) shows at its
    /// centre: for a pasted crop, `image` on the pasted garment, a distractor's batch position on
    /// a distractor (`nil` for a distractor from outside a batch of `batchSize`) and `nil` on the
    /// background; for another crop, `image` everywhere.
    static func shownImages(of crop: CropGeometry, image: Int, batchSize: Int, grid: PatchGrid) -> [Int?] {
        guard let pictures = crop.canvasPictures else { return Array(repeating: image, count: grid.count) }
        return (0..<grid.count).map { patch in
            let centre = grid.centre(of: patch)
            switch pictures.picture(x: centre.x, y: centre.y) {
            case .background: return nil
            case .view: return image
            case .distractor(let position): return position < batchSize ? position : nil
            }
        }
    }

    /// Whether each patch of a view (row-major over `grid`) shows its source image at its centre:
    /// for a pasted crop, the patches on the pasted garment; for another crop, all of them.
    static func garmentPatches(of crop: CropGeometry, grid: PatchGrid) -> [Bool] {
        (0..<grid.count).map { patch in
            let centre = grid.centre(of: patch)
            return crop.shownSourcePoint(x: centre.x, y: centre.y) != nil
        }
    }
}
