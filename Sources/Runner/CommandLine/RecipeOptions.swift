import ArgumentParser
import Foundation
import SSLCore
import SSLPlugins

/// The options that shape a training recipe, applied over a preset or a JSON configuration, in
/// the help's groups: the starting recipe and its tasks, the model, the crops, the optimisation.
/// Numeric options read their next argument even when it starts with a dash, so that
/// `--batch-size -16` is refused for its value rather than reported as missing.
struct RecipeOptions: ParsableArguments {
    @OptionGroup(title: "Recipe") var start: StartOptions
    @OptionGroup(title: "Model") var model: ModelOptions
    @OptionGroup(title: "Crops") var crops: CropOptions
    @OptionGroup(title: "Optimisation") var optimisation: OptimisationOptions

    /// The flags given that change the recipe (all of them but --epochs and --lr, which a
    /// resumed run may change).
    var recipeDefiningFlags: [String] {
        start.givenFlags + model.givenFlags + crops.givenFlags + optimisation.givenFlags
    }

    /// The recipe these options describe.
    func recipe(registry: TaskRegistry) throws -> TrainingRecipe {
        var recipe = try start.startingRecipe()
        model.apply(to: &recipe)
        crops.applyViews(to: &recipe)
        optimisation.apply(to: &recipe)
        try start.applyTasks(to: &recipe, registry: registry)
        try crops.applyAugmentation(to: &recipe, registry: registry, tasksChosen: start.tasks != nil, fromConfiguration: start.config != nil)
        return recipe
    }
}

/// The flags of `options` (flag, value) that were given a value.
func flagsGiven(_ options: [(flag: String, value: Any?)]) -> [String] {
    options.filter { $0.value != nil }.map(\.flag)
}

/// Where a recipe starts (a preset or a configuration file) and its tasks.
struct StartOptions: ParsableArguments {
    @Option(help: "Start from a preset (default: \(Preset.fashionMNIST.rawValue)); see `ssl-run tasks` for what each holds.")
    var preset: Preset?
    @Option(help: "Start from a JSON configuration file instead of a preset (see --print-config).")
    var config: String?
    @Option(help: "Comma-separated pretext tasks, e.g. dino,selfpatch.")
    var tasks: String?
    @Option(help: "Loss weights, e.g. dino=1,selfpatch=0.1, or schedules of value@position points, e.g. koleo=1@0:0.1@100% (linear between points; tasks not listed keep their default weight).")
    var weights: String?
    @Option(parsing: .unconditional, help: "Random seed.") var seed: UInt64?
    @Argument(parsing: .allUnrecognized, help: "Task options: --<task>.<option> <value> (see `ssl-run tasks`).")
    var taskOptions: [String] = []

    func validate() throws {
        if config != nil && preset != nil {
            throw ValidationError("--config and --preset both choose the starting recipe; pass only one.")
        }
        if let weights { _ = try TaskOptionArguments.weights(weights) }
        _ = try TaskOptionArguments.parse(taskOptions)
    }

    var givenFlags: [String] {
        flagsGiven([("--preset", preset), ("--config", config), ("--tasks", tasks), ("--weights", weights), ("--seed", seed)])
            + taskOptions.filter { $0.hasPrefix("--") }
    }

    /// The configuration file's recipe, else the preset's, with the seed given.
    func startingRecipe() throws -> TrainingRecipe {
        var recipe = try config.map { try TrainingRecipe(jsonFile: $0) } ?? (preset ?? .fashionMNIST).recipe
        if let seed { recipe.seed = seed }
        return recipe
    }

    /// Sets the tasks named, their weights and options.
    func applyTasks(to recipe: inout TrainingRecipe, registry: TaskRegistry) throws {
        if let tasks { try recipe.selectTasks(tasks, registry: registry) }
        let chosen = recipe.tasks.map(\.name).joined(separator: ",")
        if let weights {
            for (name, weight) in try TaskOptionArguments.weights(weights) {
                guard let index = recipe.tasks.firstIndex(where: { $0.name == name }) else {
                    throw ConfigurationError("--weights names '\(name)', which is not among the tasks (\(chosen)); add it to --tasks.")
                }
                recipe.tasks[index].weight = weight
            }
        }
        for (name, options) in try TaskOptionArguments.parse(taskOptions) {
            guard let index = recipe.tasks.firstIndex(where: { $0.name == name }) else {
                throw ConfigurationError("Options for '\(name)' were given, but '\(name)' is not among the tasks (\(chosen)); add it to --tasks.")
            }
            recipe.tasks[index].options.merge(options) { $1 }
        }
    }
}

/// The backbone's shape.
struct ModelOptions: ParsableArguments {
    @Option(help: "Backbone: ViT-Ti, ViT-S or ViT-B, or WIDTHxDEPTH (e.g. 192x6, one head per 64 channels).")
    var arch: BackboneArchitecture?
    @Option(parsing: .unconditional, help: "Attention heads (default: the architecture's).")
    var heads: Int?
    @Option(parsing: .unconditional, help: "Patch size in pixels.")
    var patchSize: Int?
    @Option(parsing: .unconditional, help: "Stochastic-depth rate of the last block.") var dropPathRate: Float?
    @Option(
        parsing: .unconditional,
        help: "Convolutional stem before the patch projection: comma-separated widths of its 3x3 convolutions, each followed by GELU (e.g. 32 or 32,32), or none.")
    var stem: String?

    func validate() throws {
        if let stem { _ = try Self.stemChannels(stem) }
        if case .custom(let width, let depth) = arch, heads == nil, width % BackboneArchitecture.heads(width: width) != 0 {
            throw ValidationError(
                "--arch \(width)x\(depth): width \(width) does not split into \(BackboneArchitecture.heads(width: width)) heads of 64 channels; pass --heads.")
        }
    }

    var givenFlags: [String] {
        flagsGiven([("--arch", arch), ("--heads", heads), ("--patch-size", patchSize), ("--drop-path-rate", dropPathRate), ("--stem", stem)])
    }

    /// The widths `--stem` lists: positive integers separated by commas, or none.
    static func stemChannels(_ text: String) throws -> [Int] {
        if text == "none" { return [] }
        let widths = text.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !widths.isEmpty, widths.allSatisfy({ ($0 ?? 0) > 0 }) else {
            throw ValidationError("--stem \(text): expected positive channel counts separated by commas (e.g. 32 or 32,32), or none.")
        }
        return widths.compactMap { $0 }
    }

    func apply(to recipe: inout TrainingRecipe) {
        if let arch { recipe.backbone = arch.configuration(keeping: recipe.backbone) }
        if let heads { recipe.backbone.heads = heads }
        if let patchSize { recipe.backbone.patchSize = patchSize }
        if let dropPathRate { recipe.backbone.dropPathRate = dropPathRate }
        if let stem, let channels = try? Self.stemChannels(stem) { recipe.backbone.stemChannels = channels }
    }
}

/// The crops of each step and their augmentation.
struct CropOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: "Number of global crops.") var globalCrops: Int?
    @Option(parsing: .unconditional, help: "Side of the global crops in pixels.") var globalSize: Int?
    @Option(parsing: .unconditional, help: "Number of local crops.") var localCrops: Int?
    @Option(parsing: .unconditional, help: "Side of the local crops in pixels.") var localSize: Int?
    @Option(help: "The augmentation, instead of the one the tasks agree on.")
    var augmentation: AugmentationRecipe.Family?
    @Option(parsing: .unconditional, help: "Scale range of the global crops (share of the image area), e.g. 0.25,1.")
    var globalScale: String?
    @Option(parsing: .unconditional, help: "Scale range of the local crops, e.g. 0.05,0.25.")
    var localScale: String?
    @Option(parsing: .unconditional, help: "Largest hue rotation of the colour jitter, in turns: 0.1 as in DINO, up to 0.5 (any hue) when colours do not tell the content.")
    var hue: Double?
    @Option(parsing: .unconditional, help: ArgumentHelp(
        "Probability of redrawing a crop's dark background as random smooth waves and tinting the rest, for images "
            + "of light content on black such as Fashion-MNIST (0, the default, as in the references).",
        valueName: "probability"))
    var randomBackground: Double?
    @Option(parsing: .unconditional, help: ArgumentHelp(
        "Probability of pasting a local crop, resized, among 1–3 other garments of the training set on a textured "
            + "canvas of the crop's size, as the scenes are drawn (copy-paste, after CP² and InsLoc; see the pastedino "
            + "task); for images of light content on black such as Fashion-MNIST (0, the default, as in the references).",
        valueName: "probability"))
    var paste: Double?

    func validate() throws {
        if let globalScale { _ = try Self.scale(globalScale, flag: "--global-scale") }
        if let localScale { _ = try Self.scale(localScale, flag: "--local-scale") }
        if let hue, !AugmentationRecipe.hueRange.contains(hue) {
            throw ValidationError("--hue expects a rotation in turns from 0 to 0.5 (0.5 allows any hue), got \(hue).")
        }
        if let randomBackground, !(0...1).contains(randomBackground) {
            throw ValidationError("--random-background expects a probability from 0 to 1, got \(randomBackground).")
        }
        if let paste, !(0...1).contains(paste) {
            throw ValidationError("--paste expects a probability from 0 to 1, got \(paste).")
        }
    }

    var givenFlags: [String] {
        flagsGiven([
            ("--global-crops", globalCrops), ("--global-size", globalSize), ("--local-crops", localCrops), ("--local-size", localSize),
            ("--augmentation", augmentation), ("--global-scale", globalScale), ("--local-scale", localScale),
            ("--hue", hue), ("--random-background", randomBackground), ("--paste", paste),
        ])
    }

    /// Sets the crops' numbers and sizes (the backbone's image size is the global crops').
    func applyViews(to recipe: inout TrainingRecipe) {
        if let globalCrops { recipe.views.globalCount = globalCrops }
        if let globalSize {
            recipe.views.globalSize = globalSize
            recipe.backbone.imageSize = globalSize
        }
        if let localCrops { recipe.views.localCount = localCrops }
        if let localSize { recipe.views.localSize = localSize }
    }

    /// Sets the augmentation: the one named, else the one the tasks agree on when the tasks
    /// were chosen on the command line or the starting recipe has none (a configuration file
    /// from before it was stored keeps its own), keeping the starting recipe's hue, background
    /// and paste; then the scales, hue, background and paste given.
    func applyAugmentation(to recipe: inout TrainingRecipe, registry: TaskRegistry, tasksChosen: Bool, fromConfiguration: Bool) throws {
        let startingHue = recipe.augmentation?.hue, startingBackground = recipe.augmentation?.background
        let startingPaste = recipe.augmentation?.paste
        if let augmentation {
            recipe.augmentation = .standard(augmentation)
        } else if tasksChosen || (!fromConfiguration && recipe.augmentation == nil) {
            recipe.augmentation = try registry.augmentation(agreedBy: recipe.tasks.map(\.name))
        }
        if let startingHue { recipe.augmentation?.hue = startingHue }
        if let startingBackground { recipe.augmentation?.background = startingBackground }
        if let startingPaste { recipe.augmentation?.paste = startingPaste }
        if let globalScale {
            recipe.augmentation = try recipe.augmentation(registry: registry)
            recipe.augmentation!.globalScale = try Self.scale(globalScale, flag: "--global-scale")
        }
        if let localScale {
            recipe.augmentation = try recipe.augmentation(registry: registry)
            recipe.augmentation!.localScale = try Self.scale(localScale, flag: "--local-scale")
        }
        if let hue {
            recipe.augmentation = try recipe.augmentation(registry: registry)
            recipe.augmentation!.hue = hue
        }
        if let randomBackground {
            recipe.augmentation = try recipe.augmentation(registry: registry)
            recipe.augmentation!.background = randomBackground
        }
        if let paste {
            recipe.augmentation = try recipe.augmentation(registry: registry)
            recipe.augmentation!.paste = paste
        }
    }

    /// A crop scale range written `lower,upper`, with 0 < lower ≤ upper ≤ 1.
    static func scale(_ text: String, flag: String) throws -> ClosedRange<Double> {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false)
            .map { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 2, let lower = parts[0], let upper = parts[1], lower > 0, lower <= upper, upper <= 1 else {
            throw ValidationError("\(flag) expects two shares of the image area, lower,upper with 0 < lower ≤ upper ≤ 1 (e.g. 0.25,1), got '\(text)'.")
        }
        return lower...upper
    }
}

/// The run's length, batch and optimiser.
struct OptimisationOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: "Training epochs (with --resume: extend the run).") var epochs: Int?
    @Option(parsing: .unconditional, help: "Images per step over all processes (each of N MPI processes takes 1/N).")
    var batchSize: Int?
    @Option(parsing: .unconditional, help: "Peak learning rate per 256 images (scaled by the batch size; with --resume: a new rate).")
    var lr: Double?
    @Option(name: [.customLong("warmup"), .customLong("warmup-epochs")], parsing: .unconditional,
            help: "The learning rate's warm-up: epochs (10), steps (200 steps) or a share of the run (10%).")
    var warmup: TrainingSpan?
    @Option(parsing: .unconditional, help: "Starting teacher EMA momentum.") var teacherMomentum: Double?
    @Option(parsing: .unconditional, help: "Layer-wise learning-rate decay in (0, 1]: block i of d learns at decay^(d − i) of the rate, the patch embedding at decay^(d + 1), the heads at the full rate; for runs that start from trained weights (--init-from). (default: 1, off)")
    var layerDecay: Double?
    @Option(help: "Operand format of the step's matrix products: fp32, or bf16 (rounded operands, float32 sums; float32 without AVX512_BF16). (default: fp32)")
    var precision: BLAS.Precision?

    /// The flags given that change the recipe: all but --epochs and --lr, which a resumed run may change.
    var givenFlags: [String] {
        flagsGiven([
            ("--batch-size", batchSize), ("--warmup", warmup), ("--teacher-momentum", teacherMomentum), ("--precision", precision),
            ("--layer-decay", layerDecay),
        ])
    }

    func apply(to recipe: inout TrainingRecipe) {
        if let epochs { recipe.epochs = epochs }
        if let batchSize { recipe.batchSize = batchSize }
        if let lr { recipe.optimization.learningRate = lr }
        if let warmup { recipe.optimization.warmup = warmup }
        if let teacherMomentum { recipe.optimization.teacherMomentum = teacherMomentum }
        if let layerDecay { recipe.optimization.layerDecay = layerDecay }
        if let precision { recipe.precision = precision }
    }
}

extension BLAS.Precision: ExpressibleByArgument {}

/// A backbone named on the command line: a standard size or `WIDTHxDEPTH`.
enum BackboneArchitecture: Equatable, ExpressibleByArgument {
    /// ViT-Ti (192 × 12, 3 heads).
    case tiny
    /// ViT-S (384 × 12, 6 heads).
    case small
    /// ViT-B (768 × 12, 12 heads).
    case base
    /// `depth` blocks of `width` channels, one head per 64 channels (at least one).
    case custom(width: Int, depth: Int)

    init?(argument: String) {
        switch argument {
        case "tiny": self = .tiny
        case "small": self = .small
        case "base": self = .base
        default:
            let parts = argument.split(separator: "x", omittingEmptySubsequences: false).map { Int($0) }
            guard parts.count == 2, let width = parts[0], let depth = parts[1], width > 0, depth > 0 else { return nil }
            self = .custom(width: width, depth: depth)
        }
    }

    /// The heads of a custom architecture `width` channels wide: one per 64 channels, at least one.
    static func heads(width: Int) -> Int { max(1, width / 64) }

    static var allValueStrings: [String] { ["tiny", "small", "base", "WIDTHxDEPTH"] }

    static var defaultCompletionKind: CompletionKind { .list(["tiny", "small", "base"]) }

    /// This architecture with the patch and image sizes, and the other choices that are not
    /// the architecture's (class token, positions, stochastic depth…), of `current`.
    func configuration(keeping current: VisionTransformerConfiguration) -> VisionTransformerConfiguration {
        var result: VisionTransformerConfiguration
        switch self {
        case .tiny: result = .tiny(patchSize: current.patchSize, imageSize: current.imageSize)
        case .small: result = .small(patchSize: current.patchSize, imageSize: current.imageSize)
        case .base: result = .base(patchSize: current.patchSize, imageSize: current.imageSize)
        case .custom(let width, let depth):
            result = current
            result.embedDimension = width
            result.depth = depth
            result.heads = Self.heads(width: width)
        }
        result.classToken = current.classToken
        result.finalNorm = current.finalNorm
        result.positionEmbedding = current.positionEmbedding
        result.freezePatchProjection = current.freezePatchProjection
        result.dropPathRate = current.dropPathRate
        result.stemChannels = current.stemChannels
        return result
    }
}

extension AugmentationRecipe.Family: ExpressibleByArgument {}

extension TrainingSpan: ExpressibleByArgument {
    public init?(argument: String) {
        guard let span = try? TrainingSpan(parsing: argument) else { return nil }
        self = span
    }
}

extension Preset: ExpressibleByArgument {
    /// The preset named `argument`, also by a former name (with a one-line notice on standard
    /// error, so that old commands keep working and say what to write instead).
    public init?(argument: String) {
        if let preset = Preset(rawValue: argument) {
            self = preset
        } else if let preset = Preset.formerNames[argument] {
            FileHandle.standardError.write(Data("Note: --preset \(argument) is now --preset \(preset.rawValue); the old name will go.\n".utf8))
            self = preset
        } else {
            return nil
        }
    }
}
