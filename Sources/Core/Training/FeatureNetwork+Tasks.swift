import Foundation

extension FeatureNetwork {
    /// `backbone` with the image embedding that `task`, if it provides one
    /// (``TaskRequirements/providesImageEmbedding``), computes for `role`'s heads.
    init(backbone: VisionTransformer, embeddingTask task: (any PretextTask)?, role: NetworkRole) {
        guard let task, task.requirements.providesImageEmbedding else {
            self.init(backbone: backbone)
            return
        }
        self.init(backbone: backbone) { features in
            guard let embedding = task.imageEmbedding(of: features, role: role) else {
                preconditionFailure("Task '\(type(of: task).name)' declares an image embedding but provided none.")
            }
            return embedding
        }
    }

    /// The network `role` (`.teacher` or `.student`) stored in the checkpoint or backbone file at
    /// `path`, with the image embedding its run's tasks provide, their heads loaded from the
    /// checkpoint. A checkpoint without a teacher gives its student; a backbone file, or a
    /// checkpoint of tasks `registry` does not know, gives its backbone alone.
    ///
    /// - Throws: ``CheckpointError`` naming the file and what is wrong with it.
    public init(checkpoint path: String, network role: NetworkRole, registry: TaskRegistry) throws {
        let backbone = try BackboneFile.load(path, network: role == .teacher ? "teacher" : "student")
        guard let recipe = try? Checkpoint.recipe(at: path), let task = try? Self.embeddingTask(of: recipe, registry: registry) else {
            self.init(backbone: backbone)
            return
        }
        let stored = role == .teacher ? try? Checkpoint.networkState(at: path, network: "teacher") : nil
        let headsRole: NetworkRole = stored == nil ? .student : .teacher
        let state = try stored ?? Checkpoint.networkState(at: path, network: "student")
        let name = type(of: task).name
        let heads = headsRole == .teacher ? task.heads.teachers ?? task.heads : task.heads
        var headState: [String: Tensor] = [:]
        for (key, value) in state where key.hasPrefix(name + ".") { headState[String(key.dropFirst(name.count + 1))] = value }
        do { try heads.load(headState) } catch { throw CheckpointError(path: path, problem: "\(error)") }
        self.init(backbone: backbone, embeddingTask: task, role: headsRole)
    }

    /// A randomly initialised network of `recipe` (from `recipe.seed`), with the randomly
    /// initialised image embedding its tasks provide, if any: the baseline a trained network
    /// of that recipe is compared with.
    ///
    /// - Throws: ``ConfigurationError`` or ``TaskConfigurationError`` when `registry` cannot build the recipe's tasks.
    public init(randomlyInitialized recipe: TrainingRecipe, registry: TaskRegistry) throws {
        self.init(
            backbone: VisionTransformer(recipe.backbone, seed: recipe.seed),
            embeddingTask: try Self.embeddingTask(of: recipe, registry: registry), role: .student)
    }

    /// The first of `recipe`'s tasks that provides an image embedding, built by `registry`.
    private static func embeddingTask(of recipe: TrainingRecipe, registry: TaskRegistry) throws -> (any PretextTask)? {
        try recipe.firstTask(registry: registry) { $0.requirements.providesImageEmbedding }
    }
}

extension TrainingRecipe {
    /// How many neighbours a task of this recipe takes as each patch's positives
    /// (``PretextTask/patchNeighborCount``), if one does.
    ///
    /// - Throws: ``ConfigurationError`` or ``TaskConfigurationError`` when `registry` cannot build a task.
    public func patchNeighborCount(registry: TaskRegistry) throws -> Int? {
        try firstTask(registry: registry) { $0.patchNeighborCount != nil }?.patchNeighborCount
    }

    /// The first of the tasks, built one by one by `registry` (with a one-iteration schedule),
    /// that satisfies `condition`.
    fileprivate func firstTask(
        registry: TaskRegistry, where condition: (any PretextTask) -> Bool
    ) throws -> (any PretextTask)? {
        let setup = TaskSetup(backbone: backbone, views: views, epochs: epochs, iterationsPerEpoch: 1, seed: seed)
        for selection in tasks {
            let task = try registry.makeTask(named: selection.name, options: selection.options, setup: setup)
            if condition(task) { return task }
        }
        return nil
    }
}
