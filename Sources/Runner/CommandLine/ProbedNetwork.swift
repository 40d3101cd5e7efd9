import ArgumentParser
import SSLCore

/// Which network of a checkpoint to read.
enum CheckpointNetwork: String, CaseIterable, ExpressibleByArgument {
    case teacher, student
}

extension FeatureReadout: ExpressibleByArgument {
    /// Fails with a one-line message naming `flag` and the read-outs that do apply when this one
    /// does not apply to a backbone of `configuration`.
    func validate(for configuration: VisionTransformerConfiguration, hasImageEmbedding: Bool, flag: String) throws {
        guard let reason = unavailability(for: configuration, hasImageEmbedding: hasImageEmbedding) else { return }
        let available = Self.available(for: configuration, hasImageEmbedding: hasImageEmbedding).map(\.rawValue)
        let choices = available.count == 1 ? available[0] : available.dropLast().joined(separator: ", ") + " or " + available.last!
        throw ValidationError("\(flag) \(rawValue) \(reason); choose \(choices).")
    }
}

/// A backbone as probes and feature extraction read it: with the image embedding its run's
/// tasks provide in place of the class token (SelfPatch's aggregation head in the original
/// recipe), if any.
struct ProbedNetwork {
    var backbone: VisionTransformer
    var imageEmbedding: ((BackboneFeatures) -> Tensor)?

    /// The `network` of a checkpoint, or the backbone of a backbone file. A checkpoint of tasks
    /// this program does not know is read by its backbone alone.
    static func load(_ path: String, network: CheckpointNetwork) throws -> ProbedNetwork {
        if let recipe = try? Checkpoint.recipe(at: path),
            let trainer = try? recipe.makeTrainer(registry: SSLRun.registry, iterationsPerEpoch: 1),
            let embedding = trainer.imageEmbedding
        {
            _ = try Checkpoint.restore(trainer, from: path)
            let role: NetworkRole = network == .student || trainer.teacherBackbone == nil ? .student : .teacher
            return ProbedNetwork(
                backbone: role == .teacher ? trainer.teacherBackbone! : trainer.backbone, imageEmbedding: { embedding($0, role) })
        }
        return ProbedNetwork(backbone: try BackboneFile.load(path, network: network.rawValue))
    }

    /// A randomly initialised network of the same architecture as `trained` (loaded from
    /// `path`), with a random embedding head when `trained` has one.
    static func randomlyInitialised(like path: String, trained: ProbedNetwork) throws -> ProbedNetwork {
        if trained.imageEmbedding != nil, let recipe = try? Checkpoint.recipe(at: path) {
            return try randomlyInitialised(recipe)
        }
        return ProbedNetwork(backbone: VisionTransformer(trained.backbone.configuration, seed: randomSeed))
    }

    /// The network `recipe` builds, initialised with a fixed seed of its own, with the image
    /// embedding its tasks provide, if any.
    static func randomlyInitialised(_ recipe: TrainingRecipe) throws -> ProbedNetwork {
        var recipe = recipe
        recipe.seed = randomSeed
        let untrained = try recipe.makeTrainer(registry: SSLRun.registry, iterationsPerEpoch: 1)
        return ProbedNetwork(backbone: untrained.backbone, imageEmbedding: untrained.imageEmbedding.map { embedding in { embedding($0, .student) } })
    }

    /// The seed of the random baselines.
    private static let randomSeed: UInt64 = 12345

    /// Fails with a one-line message naming `flag` when `readout` does not apply to this network.
    func validate(_ readout: FeatureReadout, flag: String) throws {
        try readout.validate(for: backbone.configuration, hasImageEmbedding: imageEmbedding != nil, flag: flag)
    }

    /// The probes' view of this network through `readout`.
    func featureSource(readout: FeatureReadout) -> BackboneFeatureSource {
        BackboneFeatureSource(backbone: backbone, readout: readout, imageEmbedding: imageEmbedding)
    }
}
