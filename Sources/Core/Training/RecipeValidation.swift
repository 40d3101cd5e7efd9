import Foundation

#if canImport(Glibc)
import Glibc
#endif

extension TrainingRecipe {
    /// The most epochs a run may have (so that step counts cannot overflow).
    public static let maximumEpochs = 1_000_000

    /// Checks every value a user can set, before anything is built from them, so that a bad
    /// value is reported by its flag instead of trapping later; also refuses a model that
    /// could not fit in this machine's memory.
    ///
    /// - Throws: ``ConfigurationError`` naming the flag, the value and what is allowed.
    public func validate(registry: TaskRegistry) throws {
        try backbone.validate()
        try Self.require(views.globalCount >= 1, "--global-crops", views.globalCount, "must be at least 1")
        try Self.require(views.globalSize >= 1, "--global-size", views.globalSize, "must be positive")
        try Self.require(views.localCount >= 0, "--local-crops", views.localCount, "must be 0 or more")
        if views.localCount > 0 {
            try Self.require(views.localSize >= 1, "--local-size", views.localSize, "must be positive")
        }
        for (flag, size) in [("--global-size", views.globalSize), ("--local-size", views.localSize)]
        where size % backbone.patchSize != 0 && (flag == "--global-size" || views.localCount > 0) {
            throw ConfigurationError(
                "\(flag) \(size) is not a multiple of the patch size \(backbone.patchSize); choose a multiple (e.g. "
                    + "\(max(1, size / backbone.patchSize) * backbone.patchSize)) or another --patch-size.")
        }
        if let paste = augmentation?.paste, paste > 0, views.localCount == 0 {
            throw ConfigurationError("--paste \(paste) pastes local crops, but the run has none; add some (--local-crops).")
        }
        try Self.require(
            (1...Self.maximumEpochs).contains(epochs), "--epochs", epochs, "must be between 1 and \(Self.maximumEpochs)")
        try Self.require(batchSize >= 1, "--batch-size", batchSize, "must be positive")
        if let subset = data.subset { try Self.require(subset >= 1, "--subset", subset, "must be positive") }
        try optimization.validate()
        try validateTasks(registry: registry)
        try MemoryRequirement(recipe: self, registry: registry).check()
    }

    private func validateTasks(registry: TaskRegistry) throws {
        guard !tasks.isEmpty else { throw ConfigurationError("Choose at least one task (--tasks).") }
        let names = tasks.map(\.name)
        if Set(names).count != names.count {
            throw ConfigurationError("A task is listed twice in --tasks: \(names.joined(separator: ",")).")
        }
        for selection in tasks {
            _ = try registry.entry(named: selection.name)
        }
        guard tasks.contains(where: { $0.weight.maximum > 0 }) else {
            throw ConfigurationError(
                "Every task has weight 0 (--weights), so nothing would be trained; give at least one task a positive weight.")
        }
    }

    static func require(_ condition: Bool, _ flag: String, _ value: Any, _ rule: String) throws {
        guard !condition else { return }
        throw ConfigurationError("\(flag) \(rule), got \(value).")
    }
}

extension VisionTransformerConfiguration {
    /// Checks that a ``VisionTransformer`` can be built from this architecture.
    ///
    /// - Throws: ``ConfigurationError`` naming the flag and the value.
    public func validate() throws {
        let require = TrainingRecipe.require
        try require(embedDimension >= 1 && depth >= 1, "--arch", "\(embedDimension)x\(depth)", "needs a positive width and depth")
        try require(heads >= 1, "--heads", heads, "must be positive")
        guard embedDimension % heads == 0 else {
            throw ConfigurationError(
                "--heads \(heads) does not divide the width \(embedDimension) of the backbone; choose a divisor of \(embedDimension).")
        }
        try require(mlpRatio >= 1, "mlpRatio", mlpRatio, "must be positive")
        try require(patchSize >= 1, "--patch-size", patchSize, "must be positive")
        try require(imageSize >= 1, "--global-size", imageSize, "must be positive")
        guard imageSize % patchSize == 0 else {
            throw ConfigurationError(
                "--patch-size \(patchSize) does not divide the image size \(imageSize) (--global-size); choose a divisor "
                    + "of \(imageSize).")
        }
        try require(dropPathRate.isFinite && (0..<1).contains(dropPathRate), "--drop-path-rate", dropPathRate, "must be in [0, 1)")
        try require(layerNormEpsilon.isFinite && layerNormEpsilon > 0, "layerNormEpsilon", layerNormEpsilon, "must be positive")
        if positionEmbedding == .sineCosine {
            try require(embedDimension % 4 == 0, "--arch", embedDimension, "needs a width divisible by 4 for sine-cosine positions")
        }
    }
}

extension OptimizationConfiguration {
    /// Checks that the values make a usable schedule.
    ///
    /// - Throws: ``ConfigurationError`` naming the flag and the value.
    public func validate() throws {
        let require = TrainingRecipe.require
        try require(learningRate.isFinite && learningRate > 0, "--lr", learningRate, "must be a positive number")
        try require(
            minimumLearningRate.isFinite && minimumLearningRate >= 0, "minimumLearningRate", minimumLearningRate, "must be 0 or more")
        try require(weightDecay.isFinite && weightDecay >= 0, "weightDecay", weightDecay, "must be 0 or more")
        try require(finalWeightDecay.isFinite && finalWeightDecay >= 0, "finalWeightDecay", finalWeightDecay, "must be 0 or more")
        try require((0...1).contains(teacherMomentum), "--teacher-momentum", teacherMomentum, "must be in [0, 1]")
        try require((0...1).contains(finalTeacherMomentum), "finalTeacherMomentum", finalTeacherMomentum, "must be in [0, 1]")
        try require(clipGradient.isFinite && clipGradient >= 0, "clipGradient", clipGradient, "must be 0 or more")
        try require(layerDecay > 0 && layerDecay <= 1, "--layer-decay", layerDecay, "must be in (0, 1] (1 turns it off)")
    }
}

/// A lower bound of the memory a run needs, checked against the machine's before anything is
/// allocated: the parameters with their gradients and AdamW moments (backbone and the heads'
/// first layer, sized by each task's largest `*dim` option), and one block's attention
/// probabilities for a batch of global crops.
struct MemoryRequirement {
    /// Bytes.
    let bytes: Double
    /// The option that dominates, for the message.
    let cause: String

    init(recipe: TrainingRecipe, registry: TaskRegistry) throws {
        let c = recipe.backbone
        let width = Double(c.embedDimension)
        let tokens = Double(c.imageSize / c.patchSize) * Double(c.imageSize / c.patchSize) + 1
        let backbone = Double(c.depth) * 12 * width * width + tokens * width + Double(c.patchSize * c.patchSize * 3) * width
        var heads = 0.0, largest = (flag: "--arch", value: 0.0)
        for selection in recipe.tasks {
            let entry = try registry.entry(named: selection.name)
            for option in entry.defaults where option.key.hasSuffix("dim") {
                let value = Double(selection.options[option.key] ?? option.value) ?? 0
                heads += value * width
                if value * width > largest.value {
                    largest = ("--\(selection.name).\(option.key) \(selection.options[option.key] ?? option.value)", value * width)
                }
            }
        }
        let attention = Double(recipe.batchSize) * Double(c.heads) * tokens * tokens
        // Parameters, gradients and two AdamW moments.
        bytes = 4 * (4 * (backbone + heads) + attention)
        cause = [
            (largest.value, largest.flag), (backbone, "--arch/--global-size \(c.imageSize)/--patch-size \(c.patchSize)"),
            (attention, "--global-size \(c.imageSize)/--batch-size \(recipe.batchSize)"),
        ].max { $0.0 < $1.0 }!.1
    }

    /// Throws when the machine's physical memory is smaller than the requirement.
    func check() throws {
        let physical = Double(sysconf(Int32(_SC_PHYS_PAGES))) * Double(sysconf(Int32(_SC_PAGESIZE)))
        guard physical > 0, bytes > physical else { return }
        throw ConfigurationError(
            "The model would need at least \(Self.gigabytes(bytes)) of memory, mostly for \(cause), but this machine has "
                + "\(Self.gigabytes(physical)); choose smaller sizes.")
    }

    private static func gigabytes(_ bytes: Double) -> String {
        String(format: bytes < 1e12 ? "%.1f GB" : "%.3g GB", bytes / 1e9)
    }
}

extension TrainingRecipe {
    /// What a resumed run may change, as `flag: old → new` lines, when this recipe differs from
    /// `stored` (a checkpoint's) only in the number of epochs (not fewer) and the learning
    /// rate; `nil` when anything else differs.
    public func resumableChanges(from stored: TrainingRecipe) -> [String]? {
        var comparable = self
        comparable.epochs = stored.epochs
        comparable.optimization.learningRate = stored.optimization.learningRate
        guard comparable == stored, epochs >= stored.epochs else { return nil }
        var changes: [String] = []
        if epochs != stored.epochs { changes.append("--epochs \(stored.epochs) → \(epochs)") }
        if optimization.learningRate != stored.optimization.learningRate {
            changes.append("--lr \(stored.optimization.learningRate) → \(optimization.learningRate)")
        }
        return changes
    }
}
