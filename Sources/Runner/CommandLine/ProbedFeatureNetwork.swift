import ArgumentParser
import SSLCore

/// Which network of a checkpoint to read.
enum CheckpointNetwork: String, CaseIterable, ExpressibleByArgument {
    case teacher, student

    /// The network's role.
    var role: NetworkRole { self == .teacher ? .teacher : .student }
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

/// The networks the command line probes: a checkpoint's, and the random baselines.
extension FeatureNetwork {
    /// The `network` of the checkpoint or backbone file at `path`, with its run's image embedding.
    static func load(_ path: String, network: CheckpointNetwork) throws -> FeatureNetwork {
        try FeatureNetwork(checkpoint: path, network: network.role, registry: SSLRun.registry)
    }

    /// A randomly initialised network of the same architecture as `trained` (loaded from
    /// `path`), with a random embedding head when `trained` has one.
    static func randomlyInitialized(like path: String, trained: FeatureNetwork) throws -> FeatureNetwork {
        if trained.embeddingHead != nil, let recipe = try? Checkpoint.recipe(at: path) {
            return try randomlyInitialized(recipe)
        }
        return FeatureNetwork(backbone: VisionTransformer(trained.backbone.configuration, seed: randomSeed))
    }

    /// The network `recipe` builds, initialised with a fixed seed of its own, with the image
    /// embedding its tasks provide, if any.
    static func randomlyInitialized(_ recipe: TrainingRecipe) throws -> FeatureNetwork {
        var recipe = recipe
        recipe.seed = randomSeed
        return try FeatureNetwork(randomlyInitialized: recipe, registry: SSLRun.registry)
    }

    /// How many neighbours the pictures of the checkpoint at `path` outline: the number a task
    /// of its run takes as a patch's positives, else 4 (SelfPatch's default).
    static func patchNeighborCount(checkpoint path: String) -> Int {
        ((try? Checkpoint.recipe(at: path)).flatMap { try? $0.patchNeighborCount(registry: SSLRun.registry) }) ?? 4
    }

    /// The seed of the random baselines: fixed, and different from the default run seed (0),
    /// so that the baseline is the same for every run compared and is not the trained
    /// network's own initialisation.
    private static let randomSeed: UInt64 = 12345

    /// Fails with a one-line message naming `flag` when `readout` does not apply to this network.
    func validate(_ readout: FeatureReadout, flag: String) throws {
        try readout.validate(for: backbone.configuration, hasImageEmbedding: embeddingHead != nil, flag: flag)
    }

    /// The probes' view of this network through `readout`.
    func featureSource(readout: FeatureReadout) -> BackboneFeatureSource {
        BackboneFeatureSource(network: self, readout: readout)
    }
}
