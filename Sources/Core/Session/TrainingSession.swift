import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// How a session runs, beyond the recipe.
public struct SessionOptions: Sendable {
    /// The run folder: checkpoints, configuration, metrics and report.
    public var outputFolder: String
    /// Keep a copy of the checkpoint every this many epochs (0: only the latest).
    public var saveEveryEpochs = 0
    /// Log metrics every this many steps.
    public var logEverySteps = 10
    /// Stop (with a checkpoint) after this many steps in this process, e.g. for smoke tests.
    public var maximumSteps: Int?
    /// Background threads that decode and augment (1 … ``maximumLoaderThreads``).
    public var loaderThreads = Parallel.threadCount
    /// A checkpoint or backbone file whose matching tensors initialise a new run.
    public var initializeFrom: String?
    /// Evaluate every this many epochs (0: never). The session does not evaluate by itself
    /// (see ``TrainingSession/evaluateEpoch``); it records the interval in its checkpoints.
    public var evaluateEveryEpochs = 0
    /// Write TensorBoard event files beside `metrics.jsonl` (see ``TensorBoardEventWriter``).
    public var writesTensorBoard = true
    /// Continue a checkpoint whose recipe differs from the session's in what a resumed run
    /// may change (more epochs, another learning rate); otherwise the recipes must be equal.
    public var allowsResumableChanges = false

    /// The most loader threads a session starts.
    public static let maximumLoaderThreads = 256

    public init(outputFolder: String) {
        self.outputFolder = outputFolder
    }

    /// The intervals recorded in checkpoints.
    public var intervals: RunIntervals {
        RunIntervals(logEverySteps: logEverySteps, saveEveryEpochs: saveEveryEpochs, evaluateEveryEpochs: evaluateEveryEpochs)
    }

    /// Checks every value, naming the flag of a bad one.
    public func validate() throws {
        let require = TrainingRecipe.require
        try require(logEverySteps >= 1, "--log-every", logEverySteps, "must be positive")
        try require(saveEveryEpochs >= 0, "--save-every", saveEveryEpochs, "must be 0 (only the latest) or more")
        try require(evaluateEveryEpochs >= 0, "--eval-every", evaluateEveryEpochs, "must be 0 (never) or more")
        try require(
            (1...Self.maximumLoaderThreads).contains(loaderThreads), "--loader-threads", loaderThreads,
            "must be between 1 and \(Self.maximumLoaderThreads)")
        if let maximumSteps { try require(maximumSteps >= 1, "--max-steps", maximumSteps, "must be positive") }
    }
}

/// How a session ended.
public enum SessionOutcome: Equatable, Sendable {
    /// Every epoch ran.
    case completed
    /// ``SessionOptions/maximumSteps`` steps ran; the checkpoint lets the run continue.
    case stepLimitReached
    /// A signal asked the run to stop; the checkpoint lets it continue. Exit with 128 + signal.
    case interrupted(signal: Int32)
}

/// A training run on a dataset: data loading, optimisation steps, logging, progress, online
/// evaluation and checkpoints, resumable from its folder at any step.
public final class TrainingSession {
    public let recipe: TrainingRecipe
    public let options: SessionOptions
    public let trainer: Trainer
    public let loader: DataLoader
    public let report: RunReport
    /// The TensorBoard event file the first process writes, unless turned off.
    private let tensorBoard: TensorBoardEventWriter?
    /// Called after every epoch with the trainer and the finished epoch; returns metrics to log.
    public var evaluateEpoch: ((Trainer, Int) throws -> [String: Double])?
    private var progress: TrainingProgress
    private let collective: Collective
    /// Watches the tasks' collapse signals; its warnings are printed and marked in the metrics.
    private var collapseMonitor: CollapseMonitor
    /// The collapse warnings of this session, in order.
    public private(set) var collapseWarnings: [CollapseMonitor.Warning] = []
    /// Held for the session's lifetime by the process that writes the folder.
    private let lock: RunFolderLock?

    /// The latest checkpoint's path in the run folder.
    public var checkpointPath: String { "\(options.outputFolder)/checkpoint.h5" }

    /// Prepares a run in `options.outputFolder`, continuing it when the folder holds a
    /// checkpoint of the same recipe.
    ///
    /// The folder is locked for this process while the session lives (a second run on it is
    /// refused), temporary files of killed runs are removed, and, when resuming, lines of
    /// `metrics.jsonl` logged after the checkpoint are dropped, so the log describes one run.
    ///
    /// - Throws: when the folder holds a checkpoint of a different recipe (choose another
    ///   folder) or is in use, or when the data, the options or the recipe are unusable.
    public init(
        recipe: TrainingRecipe, registry: TaskRegistry, dataset: any ImageDataset, options: SessionOptions,
        collective: Collective = SingleProcessCollective()
    ) throws {
        try options.validate()
        try recipe.validate(registry: registry)
        let augmentation = try recipe.augmentation(registry: registry).crops(for: recipe.views)
        self.recipe = recipe
        self.options = options
        self.collective = collective
        try RunFolder.create(options.outputFolder)
        if collective.rank == 0 {
            lock = try RunFolderLock(folder: options.outputFolder)
            for name in AtomicFile.removeStaleTemporaryFiles(in: options.outputFolder) {
                FileHandle.standardError.write(Data("Removed \(options.outputFolder)/\(name), left by a run that was killed.\n".utf8))
            }
        } else {
            lock = nil
        }
        let checkpoint = "\(options.outputFolder)/checkpoint.h5"
        var start = TrainingProgress()
        var resuming = false
        if FileManager.default.fileExists(atPath: checkpoint) {
            let stored = try Checkpoint.recipe(at: checkpoint)
            guard stored == recipe || (options.allowsResumableChanges && recipe.resumableChanges(from: stored) != nil) else {
                throw ConfigurationError(
                    "\(options.outputFolder) holds a checkpoint of a different configuration; choose another --output "
                        + "(or resume it with `ssl-run --resume \(options.outputFolder)`).")
            }
            resuming = true
        }
        let iterations = dataset.count / recipe.batchSize
        guard iterations > 0 else {
            throw DataError(
                path: dataset.description, problem: "has \(dataset.count) images, fewer than one batch of \(recipe.batchSize)")
        }
        trainer = try recipe.makeTrainer(registry: registry, iterationsPerEpoch: iterations, collective: collective)
        if !resuming, let source = options.initializeFrom {
            let report = trainer.initialize(from: try Checkpoint.initializationState(from: source))
            guard report.loaded.contains(where: { $0.hasPrefix("backbone.") }) else {
                throw CheckpointError(
                    path: source,
                    problem: "has no backbone tensor of this run's shapes (\(report.skipped.count) skipped, e.g. "
                        + "\(report.skipped.first ?? "none")): it holds another architecture; pass the same --arch, "
                        + "--patch-size and --global-size, or drop --init-from")
            }
            FileHandle.standardError.write(Data("Initialising from \(source):\n\(report)\n".utf8))
        }
        let metricsPath = "\(options.outputFolder)/\(RunReport.metricsFileName)"
        if resuming {
            start = try Checkpoint.restore(trainer, from: checkpoint)
            FileHandle.standardError.write(Data("Resuming \(options.outputFolder) at epoch \(start.epoch), step \(start.stepInEpoch).\n".utf8))
        }
        if collective.rank == 0 {
            // Lines past the checkpoint (or, for a new run, from a run killed before its first
            // checkpoint) describe steps that are about to run again.
            try RunFolder.truncate(metricsPath, toLength: resuming ? start.metricsLength : 0)
            if let events = try TensorBoardEventWriter.eventFiles(in: options.outputFolder).last {
                try RunFolder.truncate(events, toLength: resuming ? start.eventsLength : 0)
            }
        }
        progress = start
        collapseMonitor = CollapseMonitor(patience: CollapseMonitor.patience(forRunOf: recipe.epochs * iterations))
        loader = try DataLoader(
            dataset: dataset, recipe: augmentation, batchSize: recipe.batchSize / collective.worldSize, seed: recipe.seed,
            threadCount: options.loaderThreads, rank: collective.rank, worldSize: collective.worldSize,
            start: DataLoader.Cursor(epoch: min(start.epoch, recipe.epochs), position: start.stepInEpoch))
        report = try RunReport(folder: options.outputFolder)
        tensorBoard = collective.rank == 0 && options.writesTensorBoard
            ? try TensorBoardEventWriter(folder: options.outputFolder) : nil
        if collective.rank == 0 {
            try AtomicFile.write(Array(recipe.prettyJSON().utf8), to: "\(options.outputFolder)/config.json")
        }
    }

    /// Trains until the recipe's epochs are done, the step limit is reached or a signal
    /// arrives; writes a checkpoint at every epoch end and when stopping.
    public func run() throws -> SessionOutcome {
        SignalMonitor.install()
        let iterations = loader.batchesPerEpoch
        let remainingSteps = (recipe.epochs - progress.epoch) * iterations - progress.stepInEpoch
        guard remainingSteps > 0 else { return .completed }
        // Only the first process reports progress.
        let progressBar = collective.rank == 0
            ? ProgressReporter(title: "train", totalSteps: recipe.epochs * iterations, totalEpochs: recipe.epochs) : nil
        var stepsThisProcess = 0, imagesThisSession = 0
        while progress.epoch < recipe.epochs {
            let batch = try loader.next()
            precondition(
                batch.cursor == DataLoader.Cursor(epoch: progress.epoch, position: progress.stepInEpoch),
                "The loader delivered \(batch.cursor) while the run is at epoch \(progress.epoch), step \(progress.stepInEpoch).")
            let step = try trainer.step(
                views: batch.views, geometry: batch.geometry, epoch: progress.epoch, iterationInEpoch: progress.stepInEpoch)
            let globalStep = progress.epoch * iterations + progress.stepInEpoch
            stepsThisProcess += 1
            imagesThisSession += recipe.batchSize
            progressBar?.update(step: globalStep + 1, images: imagesThisSession, epoch: progress.epoch, loss: step.loss)
            let warnings = collapseMonitor.observe(step.health, step: globalStep)
            collapseWarnings += warnings
            for warning in warnings { progressBar?.note(warning.description) }
            if globalStep % options.logEverySteps == 0 || batch.endsEpoch || !warnings.isEmpty {
                try log(step, globalStep: globalStep)
            }
            progress.stepInEpoch += 1
            if batch.endsEpoch {
                let finished = progress.epoch
                progress.epoch += 1
                progress.stepInEpoch = 0
                var values: [String: Double] = ["data/skipped_files": Double(loader.skippedFileCount(epoch: finished))]
                if let evaluateEpoch { values.merge(try evaluateEpoch(trainer, finished)) { $1 } }
                try log(step: globalStep + 1, epoch: finished, values)
                try saveCheckpoint(copyForEpoch: options.saveEveryEpochs > 0 && (finished + 1) % options.saveEveryEpochs == 0 ? finished : nil)
            }
            if let signal = agreedStopSignal() {
                progressBar?.finish()
                if !batch.endsEpoch { try saveCheckpoint(copyForEpoch: nil) }
                return .interrupted(signal: signal)
            }
            if let maximum = options.maximumSteps, stepsThisProcess >= maximum, progress.epoch < recipe.epochs {
                progressBar?.finish()
                if !batch.endsEpoch { try saveCheckpoint(copyForEpoch: nil) }
                return .stepLimitReached
            }
        }
        progressBar?.finish()
        return .completed
    }

    /// The signal that stops the run after this step, agreed by every process (one tiny
    /// all-reduce), so that all of them stop at the same step even if only some received it.
    private func agreedStopSignal() -> Int32? {
        let local = SignalMonitor.stopSignal
        guard collective.worldSize > 1 else { return local }
        let flag = Tensor(scalar: Float(local ?? 0))
        collective.allReduceSum(flag)
        guard flag.scalar > 0 else { return nil }
        return local ?? SIGTERM
    }

    private func log(_ step: StepReport, globalStep: Int) throws {
        var values = step.terms
        values["loss"] = step.loss
        values["lr"] = step.learningRate
        values["weight_decay"] = step.weightDecay
        values["teacher_momentum"] = step.teacherMomentum
        for (phase, seconds) in step.seconds { values["time/\(phase)"] = seconds }
        // A collapsed stretch is marked at every logged step while it lasts.
        for key in collapseMonitor.ongoingCollapses { values[key] = 1 }
        try log(step: globalStep, epoch: progress.epoch, values)
    }

    /// Appends a line to `metrics.jsonl` (first process only).
    private func log(step: Int, epoch: Int, _ values: [String: Double]) throws {
        guard collective.rank == 0 else { return }
        do {
            try report.log(step: step, epoch: epoch, values)
            try tensorBoard?.addScalars(values, step: step)
        } catch {
            throw FileSystemError(path: "\(options.outputFolder)/\(RunReport.metricsFileName)", problem: "could not be written", error)
        }
    }

    private func saveCheckpoint(copyForEpoch epoch: Int?) throws {
        guard collective.rank == 0 else { return }
        let state = TrainingProgress(
            epoch: progress.epoch, stepInEpoch: progress.stepInEpoch,
            metricsLength: RunFolder.length(of: "\(options.outputFolder)/\(RunReport.metricsFileName)"),
            eventsLength: tensorBoard.flatMap { RunFolder.length(of: $0.path) })
        try Checkpoint.save(trainer, recipe: recipe, progress: state, intervals: options.intervals, to: checkpointPath)
        if let epoch {
            try AtomicFile.copy(
                from: checkpointPath, to: "\(options.outputFolder)/checkpoint-epoch\(String(format: "%04d", epoch + 1)).h5")
        }
    }
}

extension TrainingRecipe {
    /// The recipe as indented, sorted JSON (the run folder's `config.json`, `--config` input).
    public func prettyJSON() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }
}
