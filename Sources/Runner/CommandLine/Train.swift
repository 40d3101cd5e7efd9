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
        @OptionGroup(title: "Data") var dataOptions: DataOptions
        @OptionGroup(title: "Run") var runOptions: RunOptions

        /// The evaluation interval in epochs: the flag's, or (resolved by ``resolve()``) the
        /// resumed run's.
        var evalEvery: Int {
            get { runOptions.evaluationInterval ?? defaultIntervals.evaluateEveryEpochs }
            set { runOptions.evaluationInterval = newValue }
        }

        func validate() throws {
            guard runOptions.collectiveTimeout.isFinite, runOptions.collectiveTimeout > 0 else {
                throw ValidationError("--collective-timeout must be a positive number of seconds, got \(runOptions.collectiveTimeout).")
            }
            do { try sessionOptions(intervals: givenIntervals).validate() } catch let error as ConfigurationError {
                throw ValidationError(error.description)
            }
            if let resume = runOptions.resume {
                let refused = recipeOptions.recipeDefiningFlags + dataOptions.givenFlags
                    + flagsGiven([("--init-from", runOptions.initFrom), ("--output", runOptions.output.flatMap { $0 == resume ? nil : $0 })])
                guard refused.isEmpty else {
                    throw ValidationError(
                        "--resume \(resume) continues the stored configuration; \(refused.joined(separator: ", ")) cannot change it "
                            + "(allowed: --epochs, --lr, --log-every, --save-every, --eval-every, --max-steps). Start a new run "
                            + "with --output to change more.")
                }
            }
        }

        func run() throws {
            let collective = try MPICollective.forThisProcess(timeout: runOptions.collectiveTimeout)
            do {
                var command = self
                let (recipe, intervals) = try command.resolve()
                try command.train(recipe: recipe, intervals: intervals, collective: collective)
            } catch let error where !(error is ExitCode) && collective.worldSize > 1 {
                // One process failing alone would leave the others waiting in a collective.
                (collective as? MPICollective)?.abortJob(reporting: error)
                throw error
            }
        }

        /// The intervals of a new run whose flags are not given.
        private var defaultIntervals: RunIntervals { RunIntervals(logEverySteps: 10, saveEveryEpochs: 0, evaluateEveryEpochs: 1) }

        /// The intervals of a new run.
        private var givenIntervals: RunIntervals {
            RunIntervals(
                logEverySteps: runOptions.logEvery ?? defaultIntervals.logEverySteps,
                saveEveryEpochs: runOptions.saveEvery ?? defaultIntervals.saveEveryEpochs, evaluateEveryEpochs: evalEvery)
        }

        /// The recipe and intervals to run: from the flags, or from the checkpoint of the run
        /// to resume with the changes the flags allow (reported on standard error). Sets
        /// ``evalEvery`` to the interval used.
        private mutating func resolve() throws -> (TrainingRecipe, RunIntervals) {
            guard let resume = runOptions.resume else {
                var recipe = try recipeOptions.recipe(registry: SSLRun.registry)
                dataOptions.apply(to: &recipe)
                try recipe.validate(registry: SSLRun.registry)
                return (recipe, givenIntervals)
            }
            let checkpoint = "\(resume)/checkpoint.h5"
            guard FileManager.default.fileExists(atPath: checkpoint) else {
                throw ValidationError(
                    "--resume \(resume): there is no \(checkpoint) (the folder is missing or no checkpoint was written yet); "
                        + "start the run with --output \(resume).")
            }
            let stored = try Checkpoint.recipe(at: checkpoint)
            var recipe = stored
            if let epochs = recipeOptions.optimisation.epochs { recipe.epochs = epochs }
            if let lr = recipeOptions.optimisation.lr { recipe.optimization.learningRate = lr }
            try recipe.validate(registry: SSLRun.registry)
            guard let recipeChanges = recipe.resumableChanges(from: stored) else {
                throw ValidationError("--epochs \(recipe.epochs) is fewer than the \(stored.epochs) epochs of \(resume); a resumed run can only be extended.")
            }
            let storedIntervals = try Checkpoint.intervals(at: checkpoint) ?? defaultIntervals
            let intervals = RunIntervals(
                logEverySteps: runOptions.logEvery ?? storedIntervals.logEverySteps,
                saveEveryEpochs: runOptions.saveEvery ?? storedIntervals.saveEveryEpochs,
                evaluateEveryEpochs: runOptions.evaluationInterval ?? storedIntervals.evaluateEveryEpochs)
            evalEvery = intervals.evaluateEveryEpochs
            let intervalChanges = [
                ("--log-every", storedIntervals.logEverySteps, intervals.logEverySteps),
                ("--save-every", storedIntervals.saveEveryEpochs, intervals.saveEveryEpochs),
                ("--eval-every", storedIntervals.evaluateEveryEpochs, intervals.evaluateEveryEpochs),
            ].filter { $0.1 != $0.2 }.map { "\($0.0) \($0.1) → \($0.2)" }
            let changes = recipeChanges + intervalChanges
            if !changes.isEmpty {
                FileHandle.standardError.write(Data("Resuming \(resume) with changes: \(changes.joined(separator: ", ")).\n".utf8))
            }
            return (recipe, intervals)
        }

        private func sessionOptions(intervals: RunIntervals) -> SessionOptions {
            var options = SessionOptions(outputFolder: runOptions.resume ?? runOptions.output ?? "runs/latest")
            options.saveEveryEpochs = intervals.saveEveryEpochs
            options.maximumSteps = runOptions.maxSteps
            options.logEverySteps = intervals.logEverySteps
            options.evaluateEveryEpochs = intervals.evaluateEveryEpochs
            options.loaderThreads = runOptions.loaderThreads
            options.writesTensorBoard = runOptions.tensorboard
            options.initializeFrom = runOptions.initFrom
            options.allowsResumableChanges = runOptions.resume != nil
            return options
        }

        private func train(recipe: TrainingRecipe, intervals: RunIntervals, collective: Collective) throws {
            if runOptions.printConfig {
                print(try recipe.prettyJSON())
                return
            }
            let options = sessionOptions(intervals: intervals)
            let folder = options.outputFolder
            let dataset = try DataOptions.trainingDataset(recipe.data, seed: recipe.seed)
            let session = try TrainingSession(
                recipe: recipe, registry: SSLRun.registry, dataset: dataset, options: options, collective: collective)
            if collective.rank == 0 { FileHandle.standardError.write(Data(("Training \(recipe.tasks.map { "\($0.name)×\($0.weight)" }.joined(separator: " + ")) on \(dataset), "
                  + "\(recipe.epochs) epochs × \(session.loader.batchesPerEpoch) steps of \(recipe.batchSize) images; run folder \(folder); "
                  + "OpenBLAS kernels \(BLAS.kernelFamily)\(recipe.precision == .bfloat16 ? "; matrix products in bfloat16" : "")\n").utf8)) }
            if evalEvery > 0, recipe.data.path == nil, collective.rank == 0 {
                // Small held-out sets, cheap enough to probe every epoch. The baselines (a random
                // backbone of the same architecture, raw pixels) do not change: probed once.
                let suite = try EvaluationSuite.fashionMNIST(
                    imageSize: recipe.views.globalSize, patchSize: recipe.backbone.patchSize, trainCount: 2000, testCount: 1000,
                    sceneCount: 60, testSceneCount: 30, seed: recipe.seed)
                let random = try FeatureNetwork.randomlyInitialized(recipe)
                try random.validate(runOptions.evalReadout, flag: "--eval-readout")
                let baselines = suite.evaluate(random.featureSource(readout: runOptions.evalReadout), prefix: "online_random")
                    .merging(suite.evaluate(PixelFeatureSource(patchSize: recipe.backbone.patchSize), prefix: "online_pixels")) { $1 }
                session.evaluateEpoch = { trainer, epoch in
                    guard (epoch + 1) % evalEvery == 0 || epoch + 1 == recipe.epochs else { return [:] }
                    let network = trainer.featureNetwork(.teacher)
                    var metrics: [String: Double] = [:]
                    let seconds = MonotonicClock.measure {
                        metrics = suite.evaluate(network.featureSource(readout: runOptions.evalReadout), prefix: "online").merging(baselines) { $1 }
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
                print("Stopped after \(runOptions.maxSteps ?? 0) steps; continue with `\(program) --resume \(folder)`.")
            case .interrupted(let signal):
                print("Interrupted by signal \(signal); checkpoint written. Continue with `\(program) --resume \(folder)`.")
                throw ExitCode(128 + signal)
            }
        }
    }
}

/// Where a run is written, how often it logs, saves and probes, and how it uses the machine.
struct RunOptions: ParsableArguments {
    @Option(help: "The run folder (checkpoints, metrics, report; default: runs/latest). A folder holding a checkpoint of the same configuration resumes.")
    var output: String?
    @Option(help: ArgumentHelp(
        "Continue the run in this folder with its stored configuration and intervals; only --epochs (more), --lr, "
            + "--log-every, --save-every, --eval-every and --max-steps may change."))
    var resume: String?
    @Option(help: "Initialise matching parameters from a checkpoint or backbone file (e.g. continue a DINO run as DINO + SelfPatch).")
    var initFrom: String?
    @Option(parsing: .unconditional, help: "Keep a checkpoint copy every N epochs (default 0: only the latest).")
    var saveEvery: Int?
    @Option(parsing: .unconditional, help: "Stop after N steps (with a checkpoint), e.g. for a smoke test.")
    var maxSteps: Int?
    @Option(
        name: .customLong("eval-every"), parsing: .unconditional,
        help: "Probe the network (k-NN, dense probes on scenes; beside a random backbone and pixels) on held-out Fashion-MNIST every N epochs (default 1; 0: never).")
    var evaluationInterval: Int?
    @Option(help: "The image feature of the online k-NN.")
    var evalReadout: FeatureReadout = .classToken
    @Option(parsing: .unconditional, help: "Log metrics every N steps (default 10).")
    var logEvery: Int?
    @Option(parsing: .unconditional, help: "Data-loading threads (1…\(SessionOptions.maximumLoaderThreads)).")
    var loaderThreads = Parallel.threadCount
    @Option(parsing: .unconditional, help: "Seconds a process of an MPI run waits for the others in a collective before it stops the job.")
    var collectiveTimeout = 600.0
    @Flag(inversion: .prefixedEnableDisable, help: "Write TensorBoard event files beside metrics.jsonl.")
    var tensorboard = true
    @Flag(help: "Print the resolved run configuration as JSON and exit.")
    var printConfig = false
}
