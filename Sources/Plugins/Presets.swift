import SSLCore

/// Named starting points for `ssl-run --preset`, each reproducing a reference recipe or sized
/// for this machine.
public enum Preset: String, CaseIterable, Sendable {
    /// DINO's ViT-S/16 recipe: 2×224 + 8×96 crops, K = 65536 (the defaults of `main_dino.py` for ViT-S/16).
    case dino
    /// The original SelfPatch recipe: ViT-S/16 without class token and final norm, 2×224 + 8×96
    /// crops, K = 65536, K_p = 4096, image loss on the aggregation head, λ = 0.1 (alinlab/SelfPatch's README).
    case selfPatchOriginal = "selfpatch-original"
    /// MoCo v3's ViT-S recipe: 12 heads, sine-cosine positions, frozen patch projection,
    /// MoCo v3's initialisation (facebookresearch/moco-v3 `vits.py`), 2×224 crops, τ = 0.2,
    /// weight decay 0.1 on everything.
    case mocoV3 = "mocov3"
    /// DINOv2's image-level recipe (facebookresearch/dinov2 `dinov2/configs/ssl_default_config.yaml`,
    /// with `train.centering: sinkhorn_knopp` as its ViT-L/14 and ViT-g/14 configurations) at
    /// ViT-S/16 size: DINO with Sinkhorn-Knopp targets, K = 65536, trainable weight-norm
    /// magnitudes, teacher temperature 0.04 → 0.07 over 30 epochs, KoLeo (weight 0.1) and iBOT
    /// with a separate head and Sinkhorn-Knopp targets over the hidden patches (half the images
    /// masked, ratios in [0.1, 0.5]); 2×224 + 8×96 crops. Differences: the masks are iBOT's, and
    /// the image-level loss reads the unmasked student pass (see ``IBOTTask``). Not modelled:
    /// LayerScale, layer-wise learning-rate decay.
    case dinoV2 = "dinov2"
    /// iBOT's ViT-S/16 recipe (bytedance/ibot's README command with `main_ibot.py`'s defaults):
    /// DINO's image loss and iBOT's masked-patch loss on one shared head (`--shared_head true`,
    /// K = 8192, no weight normalisation of the last layer), teacher temperature 0.04 → 0.07 over
    /// 30 epochs for both, half the images masked with ratios 0.3 ± 0.2, 2×224 + 10×96 crops of
    /// scales 0.25…1 and 0.05…0.25, drop path 0.1, 800 epochs.
    case ibot
    /// DINO + SelfPatch (+ KoLeo) sized for 28×28 images (Fashion-MNIST) on a 2-core CPU: the main job.
    case fashionMNIST = "fashion-mnist"

    /// Names presets had before, with the preset each now is (`small`, renamed so as not to be
    /// taken for the ViT-S of `--arch small`).
    public static let formerNames: [String: Preset] = ["small": .fashionMNIST]

    /// One line for help text.
    public var summary: String {
        switch self {
        case .dino: "DINO ViT-S/16, 2x224 + 8x96 crops, K 65536"
        case .selfPatchOriginal: "original SelfPatch: ViT-S/16 without class token, K 65536 / K_p 4096, dino=1, selfpatch=0.1"
        case .mocoV3: "MoCo v3 ViT-S/16: 12 heads, MoCo v3 init, sin-cos positions, frozen patch projection, 2x224"
        case .ibot: "iBOT ViT-S/16: dino + ibot on one shared head, K 8192, masks 0.3 +- 0.2 on half the images, 2x224 + 10x96"
        case .dinoV2: "DINOv2-style ViT-S/16: DINO with Sinkhorn-Knopp targets + KoLeo 0.1 + iBOT, 2x224 + 8x96 crops, K 65536"
        case .fashionMNIST: "DINO + SelfPatch + KoLeo 0.5 for 28x28 images on a CPU: ViT 192x3, patch 7, 2x28 + 4x21 crops, K 256, batch 16"
        }
    }

    /// The preset's recipe.
    public var recipe: TrainingRecipe {
        switch self {
        case .dino:
            var backbone = VisionTransformerConfiguration.small()
            backbone.dropPathRate = 0.1
            return TrainingRecipe(
                backbone: backbone, views: ViewPlan(globalCount: 2, globalSize: 224, localCount: 8, localSize: 96),
                tasks: [TaskSelection(name: "dino")], epochs: 100, batchSize: 64)
        case .selfPatchOriginal:
            var backbone = VisionTransformerConfiguration.small()
            backbone.classToken = false
            backbone.finalNorm = false
            backbone.dropPathRate = 0.1
            return TrainingRecipe(
                backbone: backbone, views: ViewPlan(globalCount: 2, globalSize: 224, localCount: 8, localSize: 96),
                tasks: [
                    TaskSelection(name: "dino", options: ["center-all-crops": "true"]),
                    TaskSelection(name: "selfpatch", weight: 0.1, options: ["image-embedding": "true"]),
                ],
                epochs: 300, batchSize: 64)
        case .mocoV3:
            var backbone = VisionTransformerConfiguration.small()
            backbone.heads = 12
            backbone.positionEmbedding = .sineCosine
            backbone.freezePatchProjection = true
            backbone.initialization = .mocoV3
            var optimization = OptimizationConfiguration()
            optimization.learningRate = 1.5e-4
            optimization.minimumLearningRate = 0
            optimization.warmup = .epochs(40)
            optimization.warmupRamp = .exclusive
            optimization.weightDecay = 0.1
            optimization.finalWeightDecay = 0.1
            optimization.teacherMomentum = 0.99
            optimization.clipGradient = 0
            optimization.decayAllParameters = true
            optimization.teacherUpdate = .beforeForward
            return TrainingRecipe(
                backbone: backbone, views: ViewPlan(globalCount: 2, globalSize: 224), tasks: [TaskSelection(name: "moco")],
                optimization: optimization, epochs: 300, batchSize: 256)
        case .dinoV2:
            var backbone = VisionTransformerConfiguration.small()
            backbone.dropPathRate = 0.3
            var optimization = OptimizationConfiguration()
            // base_lr 0.004 scaled by √(batch / 1024) (`scaling_rule: sqrt_wrt_1024`) at the
            // preset's batch of 64, expressed per 256 images.
            optimization.learningRate = 0.004
            optimization.warmup = .epochs(10)
            optimization.teacherMomentum = 0.992
            let head = [
                "out-dim": "65536", "hidden-dim": "2048", "bottleneck-dim": "256", "head-layers": "3",
                "norm-last-layer": "false", "warmup-teacher-temp": "0.04", "teacher-temp": "0.07",
                "warmup-teacher-temp-epochs": "30", "freeze-last-layer": "1",
            ]
            // `ibot.mask_sample_probability` 0.5 and `mask_ratio_min_max` [0.1, 0.5] in iBOT's terms.
            let masking = ["pred-ratio": "[0, 0.3]", "pred-ratio-var": "[0, 0.2]"]
            return TrainingRecipe(
                backbone: backbone, views: ViewPlan(globalCount: 2, globalSize: 224, localCount: 8, localSize: 96),
                tasks: [
                    TaskSelection(name: "dino", options: head.merging(["centering": "sinkhorn"]) { $1 }),
                    TaskSelection(name: "koleo", weight: 0.1),
                    TaskSelection(name: "ibot", options: head.merging(masking) { $1 }.merging(["centering": "sinkhorn"]) { $1 }),
                ],
                optimization: optimization, epochs: 100, batchSize: 64)
        case .ibot:
            var backbone = VisionTransformerConfiguration.small()
            backbone.dropPathRate = 0.1
            let head = [
                "out-dim": "8192", "norm-last-layer": "false", "warmup-teacher-temp": "0.04", "teacher-temp": "0.07",
                "warmup-teacher-temp-epochs": "30",
            ]
            return TrainingRecipe(
                backbone: backbone, views: ViewPlan(globalCount: 2, globalSize: 224, localCount: 10, localSize: 96),
                tasks: [
                    TaskSelection(name: "dino", options: head),
                    TaskSelection(name: "ibot", options: ["shared-head": "true", "pred-ratio": "[0, 0.3]", "pred-ratio-var": "[0, 0.2]"]),
                ],
                epochs: 800, batchSize: 64,
                augmentation: AugmentationRecipe(globalScale: 0.25...1, localScale: 0.05...0.25))
        case .fashionMNIST:
            // Chosen by measurement on 2 cores (see docs/recipes.md): three blocks (twice the
            // steps of six in the same time, and more learning per step early on), a teacher that
            // follows within about a hundred steps, the learning rate a large batch would get
            // (2e-3 per 256 images) after a short warm-up, KoLeo at weight 0.5, which keeps DINO's
            // early steps from pulling the class tokens together (below a random backbone's k-NN
            // without it), and K = 256 prototypes. Batches of 16 images: 64 → 32 gave +1.35
            // k-NN@20 over two seeds (tools/sweep/main-job-batch.sweep), 32 → 16 another +2.45
            // over three (63.63 ± 0.64 against 61.18 ± 1.35), 16 → 8 nothing more
            // (tools/sweep/main-job-objectives.sweep). Patches of 7 pixels (a 4 × 4 grid; local
            // crops of 21 for SelfPatch's 3 × 3 neighbourhoods): a step costs half that of
            // patches of 4 and the class token learns faster, 74.1 % k-NN@20 after 6 passes over
            // 6,400 images against 63.1 % for patches of 4 in the same minutes
            // (tools/sweep/main-job-batch16-levers.sweep, main-job-patch7.sweep). DINO's crop
            // scales, as measured (the tasks alone would agree on SelfPatch's; iBOT's smaller
            // ones cost 3.7 points).
            let backbone = VisionTransformerConfiguration(embedDimension: 192, depth: 3, heads: 3, patchSize: 7, imageSize: 28)
            var optimization = OptimizationConfiguration()
            optimization.learningRate = 2e-3
            optimization.warmup = .fraction(0.05)
            optimization.teacherMomentum = 0.99
            let head = ["hidden-dim": "512", "bottleneck-dim": "128", "freeze-last-layer": "0"]
            return TrainingRecipe(
                backbone: backbone, views: ViewPlan(globalCount: 2, globalSize: 28, localCount: 4, localSize: 21),
                tasks: [
                    TaskSelection(name: "dino", options: head.merging(["out-dim": "256"]) { $1 }),
                    TaskSelection(name: "selfpatch", weight: 0.1, options: head.merging(["out-dim": "128"]) { $1 }),
                    TaskSelection(name: "koleo", weight: 0.5),
                ],
                optimization: optimization, epochs: 5, batchSize: 16, augmentation: .multiCrop)
        }
    }
}
