import ArgumentParser
import Foundation
import SSLCore
import SSLDistributed
import SSLPlugins

extension SSLRun {
    struct Train: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Pre-train a backbone (the default command).")

        @OptionGroup var recipeOptions: RecipeOptions
        @OptionGroup var dataOptions: DataOptions
        @Option(help: "The run folder (checkpoints, metrics, report). A folder holding a checkpoint of the same configuration resumes.")
        var output: String = "runs/latest"
        @Option(help: "Continue the run in this folder with its stored configuration.")
        var resume: String?
        @Option(help: "Initialise matching parameters from a checkpoint or backbone file (e.g. continue a DINO run as DINO + SelfPatch).")
        var initFrom: String?
        @Option(help: "Keep a checkpoint copy every N epochs (0: only the latest).")
        var saveEvery = 0
        @Option(help: "Stop after N steps (with a checkpoint), e.g. for a smoke test.")
        var maxSteps: Int?
        @Option(help: "Probe the network (k-NN, dense probes on scenes; beside a random backbone and pixels) on held-out Fashion-MNIST every N epochs (0: never).")
        var evalEvery = 1
        @Option(help: "The image feature of the online k-NN: \(FeatureReadout.allCases.map(\.rawValue).joined(separator: ", ")).")
        var evalReadout: FeatureReadout = .classToken
        @Option(help: "Log metrics every N steps.")
        var logEvery = 10
        @Option(help: "Data-loading threads.")
        var loaderThreads = Parallel.threadCount
        @Option(help: "Seconds a process of an MPI run waits for the others in a collective before it stops the job.")
        var collectiveTimeout = 600.0
        @Flag(help: "Print the resolved run configuration as JSON and exit.")
        var printConfig = false

        func run() throws {
            guard collectiveTimeout > 0 else { throw ValidationError("--collective-timeout must be positive, got \(collectiveTimeout).") }
            let collective = try MPICollective.forThisProcess(timeout: collectiveTimeout)
            do {
                try train(collective: collective)
            } catch let error where !(error is ExitCode) && collective.worldSize > 1 {
                // One process failing alone would leave the others waiting in a collective.
                (collective as? MPICollective)?.abortJob(reporting: error)
                throw error
            }
        }

        private func train(collective: Collective) throws {
            var recipe = try recipeOptions.recipe(registry: SSLRun.registry)
            try dataOptions.apply(to: &recipe)
            var folder = output
            if let resume {
                folder = resume
                recipe = try Checkpoint.recipe(at: "\(resume)/checkpoint.h5")
            }
            if printConfig {
                print(try recipe.prettyJSON())
                return
            }
            let dataset = try DataOptions.trainingDataset(recipe.data, seed: recipe.seed)
            let style = AugmentationStyle(task: recipe.tasks.first?.name ?? "dino")
            var options = SessionOptions(outputFolder: folder)
            options.saveEveryEpochs = saveEvery
            options.maximumSteps = maxSteps
            options.logEverySteps = logEvery
            options.loaderThreads = loaderThreads
            options.initializeFrom = initFrom
            let session = try TrainingSession(
                recipe: recipe, registry: SSLRun.registry, dataset: dataset, augmentation: style.recipe(for: recipe.views),
                options: options, collective: collective)
            if collective.rank == 0 { FileHandle.standardError.write(Data(("Training \(recipe.tasks.map { "\($0.name)×\($0.weight)" }.joined(separator: " + ")) on \(dataset), "
                  + "\(recipe.epochs) epochs × \(session.loader.batchesPerEpoch) steps of \(recipe.batchSize) images; run folder \(folder)\n").utf8)) }
            if evalEvery > 0, recipe.data.path == nil, collective.rank == 0 {
                // Small held-out sets, cheap enough to probe every epoch. The baselines (a random
                // backbone of the same architecture, raw pixels) do not change: probed once.
                let suite = try EvaluationSuite.fashionMNIST(
                    imageSize: recipe.views.globalSize, patchSize: recipe.backbone.patchSize, trainCount: 2000, testCount: 1000,
                    sceneCount: 60, testSceneCount: 30, seed: recipe.seed)
                let random = try ProbedNetwork.randomlyInitialised(recipe)
                try random.validate(evalReadout, flag: "--eval-readout")
                let baselines = suite.evaluate(random.featureSource(readout: evalReadout), prefix: "online_random")
                    .merging(suite.evaluate(PixelFeatureSource(patchSize: recipe.backbone.patchSize), prefix: "online_pixels")) { $1 }
                session.evaluateEpoch = { trainer, epoch in
                    guard (epoch + 1) % evalEvery == 0 || epoch + 1 == recipe.epochs else { return [:] }
                    let role: NetworkRole = trainer.teacherBackbone == nil ? .student : .teacher
                    let network = ProbedNetwork(
                        backbone: trainer.teacherBackbone ?? trainer.backbone,
                        imageEmbedding: trainer.imageEmbedding.map { embedding in { embedding($0, role) } })
                    var metrics: [String: Double] = [:]
                    let seconds = MonotonicClock.measure {
                        metrics = suite.evaluate(network.featureSource(readout: evalReadout), prefix: "online").merging(baselines) { $1 }
                    }
                    let table = SummaryTable.probes(metrics, columns: ["online", "online_random", "online_pixels"])
                    FileHandle.standardError.write(Data("epoch \(epoch + 1), online probes (\(String(format: "%.1f", seconds)) s):\n\(table.render())".utf8))
                    return metrics
                }
            }
            let program = Swift.CommandLine.arguments.first.map { URL(fileURLWithPath: $0).lastPathComponent } ?? "ssl-run"
            let outcome = try session.run()
            switch outcome {
            case .completed:
                if collective.rank == 0 { print("Finished: \(session.checkpointPath)") }
            case .stepLimitReached:
                print("Stopped after \(maxSteps ?? 0) steps; continue with `\(program) --resume \(folder)`.")
            case .interrupted(let signal):
                print("Interrupted by signal \(signal); checkpoint written. Continue with `\(program) --resume \(folder)`.")
                throw ExitCode(128 + signal)
            }
        }
    }
}
