import SSLCore

/// A backbone as probes and feature extraction read it: with the image embedding its run's
/// tasks provide in place of the class token (SelfPatch's aggregation head in the original
/// recipe), if any.
struct ProbedNetwork {
    var backbone: VisionTransformer
    var imageEmbedding: ((BackboneFeatures) -> Tensor)?

    /// The `network` (`teacher` or `student`) of a checkpoint, or the backbone of a backbone
    /// file. A checkpoint of tasks this program does not know is read by its backbone alone.
    static func load(_ path: String, network: String) throws -> ProbedNetwork {
        if let recipe = try? Checkpoint.recipe(at: path),
            let trainer = try? recipe.makeTrainer(registry: SSLRun.registry, iterationsPerEpoch: 1),
            let embedding = trainer.imageEmbedding
        {
            _ = try Checkpoint.restore(trainer, from: path)
            let role: NetworkRole = network == "student" || trainer.teacherBackbone == nil ? .student : .teacher
            return ProbedNetwork(
                backbone: role == .teacher ? trainer.teacherBackbone! : trainer.backbone, imageEmbedding: { embedding($0, role) })
        }
        return ProbedNetwork(backbone: try BackboneFile.load(path, network: network))
    }

    /// A randomly initialised network of the same architecture as `trained` (loaded from
    /// `path`), with a random embedding head when `trained` has one.
    static func randomlyInitialised(like path: String, trained: ProbedNetwork) throws -> ProbedNetwork {
        let seed: UInt64 = 12345
        if trained.imageEmbedding != nil, var recipe = try? Checkpoint.recipe(at: path) {
            recipe.seed = seed
            let untrained = try recipe.makeTrainer(registry: SSLRun.registry, iterationsPerEpoch: 1)
            return ProbedNetwork(backbone: untrained.backbone, imageEmbedding: untrained.imageEmbedding.map { embedding in { embedding($0, .student) } })
        }
        return ProbedNetwork(backbone: VisionTransformer(trained.backbone.configuration, seed: seed))
    }
}
