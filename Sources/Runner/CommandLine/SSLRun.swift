import ArgumentParser
import Foundation
import SSLCore
import SSLPlugins

/// The `ssl-run` command. A package that adds pretext tasks runs the same command with its
/// tasks registered:
///
/// ```swift
/// var registry = TaskRegistry.builtIn
/// registry.register(RotationTask.self)
/// SSLRun.main(registry: registry)
/// ```
public struct SSLRun: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "ssl-run",
        abstract: "Self-supervised pre-training of Vision Transformers with composable pretext tasks.",
        discussion: """
            Mix objectives by weight over one backbone:
              ssl-run --tasks dino,selfpatch --weights dino=1,selfpatch=0.1
            Task options are namespaced: --dino.out-dim 4096, --selfpatch.k-num 2 (see `ssl-run tasks`).
            """,
        subcommands: [Train.self, Evaluate.self, Report.self, Export.self, Features.self, Tasks.self],
        defaultSubcommand: Train.self)

    public init() {}

    /// The tasks the command knows; set once, by ``main(registry:)``, before parsing.
    nonisolated(unsafe) static var registry = TaskRegistry.builtIn

    /// Runs the command with `registry`'s tasks (restarting first, when OpenBLAS chose slower
    /// kernels than the processor supports: see ``BLAS/restartWithNativeKernelsIfNeeded()``).
    public static func main(registry: TaskRegistry) {
        BLAS.restartWithNativeKernelsIfNeeded()
        self.registry = registry
        main()
    }
}

extension SSLRun {
    struct Tasks: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the pretext tasks with their options and defaults.")

        func run() {
            for entry in SSLRun.registry.entries {
                print("\(entry.name) — \(entry.summary) (default weight \(entry.defaultWeight))")
                let keyWidth = entry.defaults.map(\.key.count).max() ?? 0
                let valueWidth = entry.defaults.map(\.value.count).max() ?? 0
                for option in entry.defaults {
                    let key = option.key.padding(toLength: keyWidth, withPad: " ", startingAt: 0)
                    let value = option.value.padding(toLength: valueWidth, withPad: " ", startingAt: 0)
                    print("  --\(entry.name).\(key)  \(value)  \(option.help)")
                }
                print("")
            }
            print("Presets (--preset):")
            for preset in Preset.allCases { print("  \(preset.rawValue): \(preset.summary)") }
        }
    }
}

/// The options that shape a training recipe, applied over a preset or a JSON configuration.
/// Numeric options read their next argument even when it starts with a dash, so that
/// `--batch-size -16` is refused for its value rather than reported as missing.
struct RecipeOptions: ParsableArguments {
    @Option(help: "Start from a preset: \(Preset.allCases.map(\.rawValue).joined(separator: ", ")) (default: small).")
    var preset: String?
    @Option(help: "Start from a JSON configuration file instead of a preset (see --print-config).")
    var config: String?
    @Option(help: "Comma-separated pretext tasks, e.g. dino,selfpatch.")
    var tasks: String?
    @Option(help: "Loss weights, e.g. dino=1,selfpatch=0.1, or schedules of value@position points, e.g. koleo=1@0:0.1@100% (linear between points; tasks not listed keep their default weight).")
    var weights: String?
    @Option(help: "Backbone: tiny, small, base, or WIDTHxDEPTH (e.g. 192x6).")
    var arch: String?
    @Option(parsing: .unconditional, help: "Attention heads (default: the architecture's).")
    var heads: Int?
    @Option(parsing: .unconditional, help: "Patch size in pixels.")
    var patchSize: Int?
    @Option(parsing: .unconditional, help: "Number of global crops.") var globalCrops: Int?
    @Option(parsing: .unconditional, help: "Side of the global crops in pixels.") var globalSize: Int?
    @Option(parsing: .unconditional, help: "Number of local crops.") var localCrops: Int?
    @Option(parsing: .unconditional, help: "Side of the local crops in pixels.") var localSize: Int?
    @Option(help: "The augmentation, instead of the one the tasks agree on: \(AugmentationRecipe.Family.allCases.map(\.rawValue).joined(separator: ", ")).")
    var augmentation: AugmentationRecipe.Family?
    @Option(parsing: .unconditional, help: "Scale range of the global crops (share of the image area), e.g. 0.25,1.")
    var globalScale: String?
    @Option(parsing: .unconditional, help: "Scale range of the local crops, e.g. 0.05,0.25.")
    var localScale: String?
    @Option(parsing: .unconditional, help: "Training epochs (with --resume: extend the run).") var epochs: Int?
    @Option(parsing: .unconditional, help: "Images per step over all processes (each of N MPI processes takes 1/N).")
    var batchSize: Int?
    @Option(parsing: .unconditional, help: "Peak learning rate per 256 images (scaled by the batch size; with --resume: a new rate).")
    var lr: Double?
    @Option(name: [.customLong("warmup"), .customLong("warmup-epochs")], parsing: .unconditional,
            help: "The learning rate's warm-up: epochs (10), steps (200 steps) or a share of the run (10%).")
    var warmup: TrainingSpan?
    @Option(parsing: .unconditional, help: "Starting teacher EMA momentum.") var teacherMomentum: Double?
    @Option(parsing: .unconditional, help: "Stochastic-depth rate of the last block.") var dropPathRate: Float?
    @Option(parsing: .unconditional, help: "Random seed.") var seed: UInt64?
    @Argument(parsing: .allUnrecognized, help: "Task options: --<task>.<option> <value>.")
    var taskOptions: [String] = []

    func validate() throws {
        if config != nil && preset != nil {
            throw ValidationError("--config and --preset both choose the starting recipe; pass only one.")
        }
        if let preset, Preset(rawValue: preset) == nil {
            throw ValidationError("Unknown --preset '\(preset)'; choose one of \(Preset.allCases.map(\.rawValue).joined(separator: ", ")).")
        }
        if let weights { _ = try TaskOptionArguments.weights(weights) }
        _ = try TaskOptionArguments.parse(taskOptions)
        if let globalScale { _ = try Self.scale(globalScale, flag: "--global-scale") }
        if let localScale { _ = try Self.scale(localScale, flag: "--local-scale") }
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

    /// The flags given that change the recipe (all of them but --epochs and --lr, which a
    /// resumed run may change).
    var recipeDefiningFlags: [String] {
        let given: [(String, Any?)] = [
            ("--preset", preset), ("--config", config), ("--tasks", tasks), ("--weights", weights), ("--arch", arch),
            ("--heads", heads), ("--patch-size", patchSize), ("--global-crops", globalCrops), ("--global-size", globalSize),
            ("--local-crops", localCrops), ("--local-size", localSize), ("--augmentation", augmentation),
            ("--global-scale", globalScale), ("--local-scale", localScale), ("--batch-size", batchSize),
            ("--warmup", warmup), ("--teacher-momentum", teacherMomentum), ("--drop-path-rate", dropPathRate),
            ("--seed", seed),
        ]
        return given.filter { $0.1 != nil }.map(\.0) + taskOptions.filter { $0.hasPrefix("--") }
    }

    /// The recipe these options describe.
    func recipe(registry: TaskRegistry) throws -> TrainingRecipe {
        var recipe: TrainingRecipe
        if let config {
            recipe = try TrainingRecipe(jsonFile: config)
        } else {
            let name = preset ?? Preset.small.rawValue
            guard let chosen = Preset(rawValue: name) else {
                throw ValidationError("Unknown --preset '\(name)'; choose one of \(Preset.allCases.map(\.rawValue).joined(separator: ", ")).")
            }
            recipe = chosen.recipe
        }
        if let arch { recipe.backbone = try Self.backbone(arch, keeping: recipe.backbone) }
        if let heads { recipe.backbone.heads = heads }
        if let patchSize { recipe.backbone.patchSize = patchSize }
        if let globalCrops { recipe.views.globalCount = globalCrops }
        if let globalSize {
            recipe.views.globalSize = globalSize
            recipe.backbone.imageSize = globalSize
        }
        if let localCrops { recipe.views.localCount = localCrops }
        if let localSize { recipe.views.localSize = localSize }
        if let epochs { recipe.epochs = epochs }
        if let batchSize { recipe.batchSize = batchSize }
        if let lr { recipe.optimization.learningRate = lr }
        if let warmup { recipe.optimization.warmup = warmup }
        if let teacherMomentum { recipe.optimization.teacherMomentum = teacherMomentum }
        if let seed { recipe.seed = seed }
        if let dropPathRate { recipe.backbone.dropPathRate = dropPathRate }
        if let tasks {
            let names = tasks.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
            recipe.tasks = try names.map { name in
                let entry = try registry.entry(named: name)
                return recipe.tasks.first { $0.name == name } ?? TaskSelection(name: name, weight: TaskWeight(entry.defaultWeight))
            }
        }
        if let weights {
            for (name, weight) in try TaskOptionArguments.weights(weights) {
                guard let index = recipe.tasks.firstIndex(where: { $0.name == name }) else {
                    throw TaskConfigurationError("--weights names '\(name)', which is not among the tasks (\(recipe.tasks.map(\.name).joined(separator: ","))).")
                }
                recipe.tasks[index].weight = weight
            }
        }
        for (name, options) in try TaskOptionArguments.parse(taskOptions) {
            guard let index = recipe.tasks.firstIndex(where: { $0.name == name }) else {
                throw TaskConfigurationError(
                    "Options for '\(name)' were given, but '\(name)' is not among the tasks (\(recipe.tasks.map(\.name).joined(separator: ","))); add it to --tasks.")
            }
            recipe.tasks[index].options.merge(options) { $1 }
        }
        // The augmentation: the one named, else the one the tasks agree on when the tasks are
        // chosen here or the starting recipe has none (a configuration from before it was
        // stored keeps its own); then the scales given.
        if let augmentation {
            recipe.augmentation = .standard(augmentation)
        } else if tasks != nil || (config == nil && recipe.augmentation == nil) {
            recipe.augmentation = try registry.augmentation(agreedBy: recipe.tasks.map(\.name))
        }
        if let globalScale {
            recipe.augmentation = try recipe.augmentation(registry: registry)
            recipe.augmentation!.globalScale = try Self.scale(globalScale, flag: "--global-scale")
        }
        if let localScale {
            recipe.augmentation = try recipe.augmentation(registry: registry)
            recipe.augmentation!.localScale = try Self.scale(localScale, flag: "--local-scale")
        }
        return recipe
    }

    private static func backbone(_ text: String, keeping current: VisionTransformerConfiguration) throws -> VisionTransformerConfiguration {
        var result: VisionTransformerConfiguration
        switch text {
        case "tiny": result = .tiny(patchSize: current.patchSize, imageSize: current.imageSize)
        case "small": result = .small(patchSize: current.patchSize, imageSize: current.imageSize)
        case "base": result = .base(patchSize: current.patchSize, imageSize: current.imageSize)
        default:
            let parts = text.split(separator: "x").compactMap { Int($0) }
            guard parts.count == 2, parts[0] > 0, parts[1] > 0 else {
                throw ValidationError("--arch expects tiny, small, base or WIDTHxDEPTH (e.g. 192x6), got '\(text)'.")
            }
            result = current
            result.embedDimension = parts[0]
            result.depth = parts[1]
            result.heads = max(1, parts[0] / 64)
            guard parts[0] % result.heads == 0 else {
                throw ValidationError("--arch \(text): width \(parts[0]) does not split into \(result.heads) heads of 64; pass --heads.")
            }
        }
        result.classToken = current.classToken
        result.finalNorm = current.finalNorm
        result.positionEmbedding = current.positionEmbedding
        result.freezePatchProjection = current.freezePatchProjection
        result.dropPathRate = current.dropPathRate
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
