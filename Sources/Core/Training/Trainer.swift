/// The optimisation hyper-parameters of a run (the defaults of DINO's `main_dino.py`).
public struct OptimizationConfiguration: Codable, Sendable, Equatable {
    /// When the teacher takes its EMA step.
    public enum TeacherUpdate: String, Codable, Sendable {
        /// After the optimizer step, with the step's momentum (DINO, SelfPatch).
        case afterStep
        /// Before the teacher's forward pass, with the step's momentum (MoCo v3).
        case beforeForward
    }

    /// The peak learning rate for a global batch of 256 images; scaled linearly with the batch.
    public var learningRate = 5e-4
    public var minimumLearningRate = 1e-6
    /// The learning rate's linear warm-up from 0.
    public var warmup = TrainingSpan.epochs(10)
    /// How the warm-up reaches the peak (DINO's linspace, or MoCo v3's proportional ramp).
    public var warmupRamp = WarmupRamp.inclusive
    public var weightDecay = 0.04
    public var finalWeightDecay = 0.4
    public var teacherMomentum = 0.996
    public var finalTeacherMomentum = 1.0
    /// Per-parameter gradient-norm limit; 0 disables clipping.
    public var clipGradient = 3.0
    /// Decay every parameter (MoCo v3) instead of exempting biases and 1-D tensors (DINO).
    public var decayAllParameters = false
    public var teacherUpdate = TeacherUpdate.afterStep
    /// Layer-wise learning-rate decay, in (0, 1]: the learning rate of backbone block `i` (of
    /// `depth`) is multiplied by `layerDecay^(depth − i)`, that of the patch embedding, position
    /// table and class token by `layerDecay^(depth + 1)`; the final norm and the heads keep the
    /// full rate. 1 (the default) turns it off. The fine-tuning recipe of BEiT (Bao et al.,
    /// ICLR 2022) and MAE (`param_groups_lrd` in MAE's `util/lr_decay.py`): a network that
    /// starts from trained weights changes its first layers least.
    public var layerDecay = 1.0

    public init() {}
}

extension OptimizationConfiguration {
    enum CodingKeys: String, CodingKey {
        case learningRate, minimumLearningRate, warmup, warmupRamp, weightDecay, finalWeightDecay, teacherMomentum
        case finalTeacherMomentum, clipGradient, decayAllParameters, teacherUpdate, layerDecay
    }

    /// Decodes a configuration; `layerDecay` may be absent (configurations and checkpoints
    /// written before it existed), meaning 1: no decay.
    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        learningRate = try container.decode(Double.self, forKey: .learningRate)
        minimumLearningRate = try container.decode(Double.self, forKey: .minimumLearningRate)
        warmup = try container.decode(TrainingSpan.self, forKey: .warmup)
        warmupRamp = try container.decode(WarmupRamp.self, forKey: .warmupRamp)
        weightDecay = try container.decode(Double.self, forKey: .weightDecay)
        finalWeightDecay = try container.decode(Double.self, forKey: .finalWeightDecay)
        teacherMomentum = try container.decode(Double.self, forKey: .teacherMomentum)
        finalTeacherMomentum = try container.decode(Double.self, forKey: .finalTeacherMomentum)
        clipGradient = try container.decode(Double.self, forKey: .clipGradient)
        decayAllParameters = try container.decode(Bool.self, forKey: .decayAllParameters)
        teacherUpdate = try container.decode(TeacherUpdate.self, forKey: .teacherUpdate)
        layerDecay = try container.decodeIfPresent(Double.self, forKey: .layerDecay) ?? 1
    }
}

/// A task with its loss weight.
public struct WeightedTask {
    public var task: any PretextTask
    /// The weight per global iteration.
    public var weight: any Schedule

    public init(_ task: any PretextTask, weight: any Schedule = ConstantSchedule(1)) {
        self.task = task
        self.weight = weight
    }

    /// The task's registry name.
    public var name: String { type(of: task).name }
}

/// A schedule that always returns the same value.
public struct ConstantSchedule: Schedule {
    public var constant: Double
    public init(_ constant: Double) { self.constant = constant }
    public func value(at iteration: Int) -> Double { constant }
}

/// Why training stopped.
public enum TrainingError: Error, CustomStringConvertible {
    case incompatibleTasks(String)
    case nonFiniteLoss(iteration: Int, terms: [String: Double])

    public var description: String {
        switch self {
        case .incompatibleTasks(let message):
            return message
        case .nonFiniteLoss(let iteration, let terms):
            let listing = terms.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")
            return "The loss is not finite at iteration \(iteration) (\(listing)). Training stopped; lower the "
                + "learning rate, raise the warm-up, or check the data for NaN."
        }
    }
}

/// What one optimisation step did.
public struct StepReport {
    /// The weighted total loss.
    public var loss: Double
    /// Every task's named terms as `<task>.<term>`, with each task's total as `<task>.loss`.
    public var terms: [String: Double]
    public var learningRate: Double
    public var weightDecay: Double
    public var teacherMomentum: Double
    /// Seconds spent in each phase: `backbone`, each task's name, `backward`, `optimizer`.
    public var seconds: [String: Double]
    /// Each task's collapse signals on this process's share of the batch, by task name.
    public var health: [String: TaskHealth]
}

/// The forward and backward half of a step (``Trainer/lossAndGradients(views:epoch:iteration:)``).
public struct StepLoss {
    /// The weighted total loss.
    public var loss: Double
    /// Every task's weight and named terms as `<task>.<term>`, with each task's total as
    /// `<task>.loss` and the norm of the gradient it sends into the backbone as
    /// `<task>.backbone_gradient_norm`.
    public var terms: [String: Double]
    /// Seconds spent in each phase: `backbone`, each task's name, `backward`, `communication`.
    public var seconds: [String: Double]
    /// Each task's collapse signals on this process's share of the batch, by task name.
    public var health: [String: TaskHealth]
}

/// Runs the optimisation step shared by every combination of tasks:
/// schedules → (teacher EMA) → one shared forward → weighted task losses → one backward →
/// per-parameter clipping → last-layer freeze → AdamW → teacher EMA (the order of
/// `train_one_epoch` in DINO's `main_dino.py`).
public final class Trainer {
    public let backbone: VisionTransformer
    public let teacherBackbone: VisionTransformer?
    public let tasks: [WeightedTask]
    /// The trained network: `backbone.*` and every task's heads as `<task>.*`.
    public let student: ModuleDictionary
    /// The EMA network, with the same names, when any task needs a teacher.
    public let teacher: ModuleDictionary?
    public let optimizer: AdamW
    public let optimization: OptimizationConfiguration
    public let setup: TaskSetup
    public let learningRateSchedule: CosineSchedule
    public let weightDecaySchedule: CosineSchedule
    public let momentumSchedule: CosineSchedule
    /// The global batch (images per step over all processes).
    public let globalBatchSize: Int
    /// The precision of the matrix products of the forward and backward passes; parameters,
    /// gradients, optimizer state, the teacher's EMA, normalisations, softmaxes and losses are
    /// float32 whatever it is.
    public let precision: BLAS.Precision

    /// Builds the student (and teacher) from `backbone` and the tasks, checking that they fit;
    /// `globalBatchSize` is the images of one step over all processes (it scales the learning
    /// rate); `precision` is that of the passes' matrix products.
    ///
    /// - Throws: ``TrainingError/incompatibleTasks(_:)`` naming what does not fit and how to fix it.
    public init(
        backbone: VisionTransformer, tasks: [WeightedTask], optimization: OptimizationConfiguration,
        setup: TaskSetup, globalBatchSize: Int, precision: BLAS.Precision = .float32
    ) throws {
        try Self.validate(
            tasks: tasks, backbone: backbone.configuration, views: setup.views,
            imagesPerProcess: globalBatchSize / max(setup.collective.worldSize, 1), totalIterations: setup.totalIterations)
        self.backbone = backbone
        self.tasks = tasks
        self.optimization = optimization
        self.precision = precision
        self.setup = setup
        self.globalBatchSize = globalBatchSize
        student = ModuleDictionary([("backbone", backbone)] + tasks.map { ($0.name, $0.task.heads) })
        if tasks.contains(where: { $0.task.requirements.needsTeacher || $0.task.heads.hasTeacher }) {
            var teacherConfiguration = backbone.configuration
            teacherConfiguration.dropPathRate = 0
            let teacherBackbone = VisionTransformer(teacherConfiguration)
            teacherBackbone.copyState(from: backbone)
            var members: [(name: String, module: Module)] = [("backbone", teacherBackbone)]
            for entry in tasks {
                guard let teachers = entry.task.heads.teachers else { continue }
                entry.task.heads.copyStateIntoTeachers()
                members.append((entry.name, teachers))
            }
            for (_, module) in members {
                for (_, parameter) in module.namedParameters() { parameter.requiresGradient = false }
            }
            self.teacherBackbone = teacherBackbone
            teacher = ModuleDictionary(members)
        } else {
            teacherBackbone = nil
            teacher = nil
        }
        let parameters = student.namedParameters()
        let decayGroups = optimization.decayAllParameters
            ? [ParameterGroup(parameters: parameters.filter { $0.tensor.requiresGradient })]
            : ParameterGroup.dinoGroups(parameters)
        let groups = optimization.layerDecay == 1
            ? decayGroups
            : ParameterGroup.layerDecayed(decayGroups, decay: optimization.layerDecay, depth: backbone.configuration.depth)
        let peak = optimization.learningRate * Double(globalBatchSize) / 256
        learningRateSchedule = CosineSchedule(
            base: peak, final: optimization.minimumLearningRate, iterations: setup.totalIterations,
            warmupIterations: setup.iterations(of: optimization.warmup), ramp: optimization.warmupRamp)
        weightDecaySchedule = CosineSchedule(
            base: optimization.weightDecay, final: optimization.finalWeightDecay, epochs: setup.epochs,
            iterationsPerEpoch: setup.iterationsPerEpoch)
        momentumSchedule = CosineSchedule(
            base: optimization.teacherMomentum, final: optimization.finalTeacherMomentum, epochs: setup.epochs,
            iterationsPerEpoch: setup.iterationsPerEpoch)
        optimizer = AdamW(groups: groups, learningRate: peak, weightDecay: optimization.weightDecay)
    }

    /// Runs one optimisation step on `views` (`[batch, 3, size, size]` each, in the plan's
    /// order), whose crops come from the source regions `geometry` (`[view][image]`; needed by
    /// tasks that read crop geometry, see ``DataLoader/Batch/geometry``).
    public func step(
        views: [Tensor], geometry: [[CropGeometry]]? = nil, epoch: Int, iterationInEpoch: Int
    ) throws -> StepReport {
        guard (0..<setup.iterationsPerEpoch).contains(iterationInEpoch), epoch >= 0 else {
            throw TrainingError.incompatibleTasks(
                "Step \(iterationInEpoch) of epoch \(epoch) does not fit a trainer built for \(setup.iterationsPerEpoch) "
                    + "iterations per epoch: build it with the loader's batchesPerEpoch (makeTrainer(iterationsPerEpoch:)), "
                    + "so that its schedules span the run.")
        }
        let iteration = epoch * setup.iterationsPerEpoch + iterationInEpoch
        let learningRate = learningRateSchedule.value(at: iteration)
        let weightDecay = weightDecaySchedule.value(at: iteration)
        let momentum = momentumSchedule.value(at: iteration)
        optimizer.learningRate = learningRate
        optimizer.weightDecay = weightDecay
        if optimization.teacherUpdate == .beforeForward { updateTeacher(momentum: momentum) }
        var result = try lossAndGradients(views: views, geometry: geometry, epoch: epoch, iteration: iteration)
        var backboneGradientNorm = 0.0
        result.seconds["optimizer"] = MonotonicClock.measure {
            // Clipping measures every gradient's norm anyway: the backbone's (of the gradient
            // averaged over the processes, before clipping) comes from those.
            let norms = GradientClipping.clipPerParameter(
                student.trainableParameters(), maximumNorm: optimization.clipGradient > 0 ? optimization.clipGradient : .infinity)
            backboneGradientNorm = norms.reduce(0.0) { $0 + ($1.key.hasPrefix("backbone.") ? $1.value * $1.value : 0) }.squareRoot()
            freezeParameters(iteration: iteration)
            optimizer.step()
            if optimization.teacherUpdate == .afterStep { updateTeacher(momentum: momentum) }
        }
        result.terms["backbone_gradient_norm"] = backboneGradientNorm
        return StepReport(
            loss: result.loss, terms: result.terms, learningRate: learningRate, weightDecay: weightDecay,
            teacherMomentum: momentum, seconds: result.seconds, health: result.health)
    }

    /// The forward and backward half of a step on `views` at global iteration `iteration`: one
    /// shared forward pass, every task's loss at its weight (a task at weight 0 is skipped, its
    /// state untouched), one backward pass per task down to the backbone's output (measuring the
    /// gradient each sends into the backbone), one through the backbone, and the gradients
    /// averaged over the processes. The gradients are left on the student's parameters, ready
    /// for clipping and the optimizer; the tasks' state (centres, queues) is updated.
    ///
    /// - Throws: ``TrainingError/nonFiniteLoss(iteration:terms:)`` when the loss is not finite;
    ///   ``TrainingError/incompatibleTasks(_:)`` when a task reads crop geometry and the step
    ///   has none.
    public func lossAndGradients(
        views: [Tensor], geometry: [[CropGeometry]]? = nil, epoch: Int, iteration: Int
    ) throws -> StepLoss {
        try BLAS.withPrecision(precision) {
            try passes(views: views, geometry: geometry, epoch: epoch, iteration: iteration)
        }
    }

    private func passes(views: [Tensor], geometry: [[CropGeometry]]?, epoch: Int, iteration: Int) throws -> StepLoss {
        if geometry == nil, let reader = tasks.first(where: { $0.task.requirements.needsCropGeometry }) {
            throw TrainingError.incompatibleTasks(
                "Task '\(reader.name)' reads crop geometry, but the step has none: pass the batch's `geometry` to "
                    + "Trainer.step (DataLoader.Batch.geometry).")
        }
        var seconds: [String: Double] = [:]
        // The last step's gradients go before this step's activations are made, not after:
        // kept through the forward pass they would add a full set of parameter gradients to
        // the step's peak memory.
        student.clearGradients()
        backbone.setTraining(true)
        let forward = SharedForward(
            views: views, geometry: geometry, globalViewCount: setup.views.globalCount, student: featureNetwork(.student),
            teacher: teacher == nil ? nil : featureNetwork(.teacher))
        // The student's passes first, so that each task's time is its own.
        seconds["backbone"] = MonotonicClock.measure { forward.runStudentBackbone() }

        var weightedLosses: [(name: String, loss: Tensor)] = []
        var loss = 0.0
        var terms: [String: Double] = [:]
        var health: [String: TaskHealth] = [:]
        for entry in tasks {
            let weight = entry.weight.value(at: iteration)
            terms["\(entry.name).weight"] = weight
            // A task at weight 0 is skipped: no loss, no gradient, no update of its state.
            guard weight > 0 else { continue }
            var result: TaskLoss!
            forward.startTask()
            let context = TaskStep(
                forward: forward, epoch: epoch, iteration: iteration, taskName: entry.name, seed: setup.seed,
                collective: setup.collective)
            seconds[entry.name] = MonotonicClock.measure { result = entry.task.loss(context) }
            terms["\(entry.name).loss"] = Double(result.total.scalar)
            for (key, value) in result.terms.merging(result.health.terms, uniquingKeysWith: { $1 }) {
                terms["\(entry.name).\(key)"] = value
            }
            health[entry.name] = result.health
            for (key, value) in entry.task.loggedScheduleValues(iteration: iteration) { terms["\(entry.name).\(key)"] = value }
            weightedLosses.append((entry.name, weight == 1 ? result.total : result.total * Float(weight)))
            loss += Double(weightedLosses.last!.loss.scalar)
        }

        // One backward pass per task down to the backbone's output, so the gradient each task
        // sends into the shared backbone can be measured, then one through the backbone.
        seconds["backward"] = MonotonicClock.measure {
            for weighted in weightedLosses {
                weighted.loss.backward()
                terms["\(weighted.name).backbone_gradient_norm"] = forward.collectBackboneGradient()
            }
            forward.backwardThroughBackbone()
        }
        // Averaged before the check, so every process sees the same verdict.
        if setup.collective.worldSize > 1 { (loss, terms) = averageAcrossProcesses(loss: loss, terms: terms) }
        guard loss.isFinite else { throw TrainingError.nonFiniteLoss(iteration: iteration, terms: terms) }
        if setup.collective.worldSize > 1 {
            seconds["communication"] = MonotonicClock.measure { averageGradientsAcrossProcesses() }
        }
        return StepLoss(loss: loss, terms: terms, seconds: seconds, health: health)
    }

    /// The network `role` as tasks and probes read it: its backbone with the image embedding a
    /// task provides in place of the class token (SelfPatch's aggregation head in the original
    /// recipe), if any. A run without a teacher gives its student for either role.
    public func featureNetwork(_ role: NetworkRole) -> FeatureNetwork {
        let provider = tasks.first { $0.task.requirements.providesImageEmbedding }?.task
        if role == .teacher, let teacherBackbone {
            return FeatureNetwork(backbone: teacherBackbone, embeddingTask: provider, role: .teacher)
        }
        return FeatureNetwork(backbone: backbone, embeddingTask: provider, role: .student)
    }

    /// Applies the teacher EMA with `momentum`.
    public func updateTeacher(momentum: Double) {
        guard let teacher else { return }
        ExponentialMovingAverage.update(teacher: teacher, student: student, momentum: momentum)
    }

    /// The loss and the logged terms averaged over the processes (every process computes the
    /// same terms, so their sorted names line up), so logs describe the global batch.
    private func averageAcrossProcesses(loss: Double, terms: [String: Double]) -> (Double, [String: Double]) {
        let names = terms.keys.sorted()
        let values = Tensor(shape: [names.count + 1], elements: [Float(loss)] + names.map { Float(terms[$0]!) })
        setup.collective.allReduceMean(values)
        var averaged: [String: Double] = [:]
        for (index, name) in names.enumerated() { averaged[name] = Double(values.storage.base[index + 1]) }
        return (Double(values.storage.base[0]), averaged)
    }

    /// Replaces every gradient by its mean over the processes, in buckets of at most
    /// ``gradientBucketElements`` floats (one all-reduce per bucket, not per tensor). Every
    /// process holds the same parameters in the same order, so the buckets line up.
    private func averageGradientsAcrossProcesses() {
        let gradients = student.trainableParameters().compactMap(\.tensor.gradient)
        let scale = 1 / Float(setup.collective.worldSize)
        var start = 0
        while start < gradients.count {
            var end = start, elements = 0
            while end < gradients.count && (end == start || elements + gradients[end].count <= Self.gradientBucketElements) {
                elements += gradients[end].count
                end += 1
            }
            let bucket = Tensor(uninitializedShape: [elements])
            var offset = 0
            for gradient in gradients[start..<end] {
                (bucket.storage.base + offset).update(from: gradient.storage.base, count: gradient.count)
                offset += gradient.count
            }
            setup.collective.allReduceSum(bucket)
            offset = 0
            for gradient in gradients[start..<end] {
                let source = bucket.storage.base + offset, target = gradient.storage.base
                for index in 0..<gradient.count { target[index] = source[index] * scale }
                offset += gradient.count
            }
            start = end
        }
    }

    /// The largest all-reduce of gradients, in floats (32 MB).
    static let gradientBucketElements = 8 << 20

    /// Drops the gradients of parameters a task holds fixed at this iteration, so AdamW skips them.
    private func freezeParameters(iteration: Int) {
        for entry in tasks {
            for (name, parameter) in entry.task.heads.namedParameters() where entry.task.isFrozen(name, iteration: iteration) {
                parameter.gradient = nil
            }
        }
    }

    private static func validate(
        tasks: [WeightedTask], backbone: VisionTransformerConfiguration, views: ViewPlan, imagesPerProcess: Int,
        totalIterations: Int
    ) throws {
        guard !tasks.isEmpty else { throw TrainingError.incompatibleTasks("Choose at least one task (--tasks).") }
        if let idle = (0..<totalIterations).first(where: { iteration in tasks.allSatisfy { $0.weight.value(at: iteration) <= 0 } }) {
            throw TrainingError.incompatibleTasks(
                "Every task's weight is 0 at iteration \(idle), so that step would train nothing; give a task a positive "
                    + "weight there (--weights).")
        }
        let providesEmbedding = tasks.contains { $0.task.requirements.providesImageEmbedding }
        for entry in tasks {
            try entry.task.heads.validate(task: entry.name)
            let needs = entry.task.requirements
            if needs.minimumImagesPerProcess > imagesPerProcess {
                throw TrainingError.incompatibleTasks(
                    "Task '\(entry.name)' needs at least \(needs.minimumImagesPerProcess) images per process and step; the run "
                        + "gives each process \(imagesPerProcess) (--batch-size divided by the number of processes).")
            }
            if needs.minimumGlobalViews > views.globalCount {
                throw TrainingError.incompatibleTasks(
                    "Task '\(entry.name)' needs at least \(needs.minimumGlobalViews) global crops; the run has "
                        + "\(views.globalCount) (--global-crops).")
            }
            if needs.minimumLocalViews > views.localCount {
                throw TrainingError.incompatibleTasks(
                    "Task '\(entry.name)' needs at least \(needs.minimumLocalViews) local crops; the run has "
                        + "\(views.localCount) (--local-crops).")
            }
            if needs.needsPatchTokens || needs.minimumPatchGrid > 1,
                let crop = views.sizes.filter({ $0 / backbone.patchSize < max(needs.minimumPatchGrid, 1) }).min()
            {
                let grid = max(needs.minimumPatchGrid, 1), side = crop / backbone.patchSize
                throw TrainingError.incompatibleTasks(
                    "Task '\(entry.name)' reads patch grids of at least \(grid)×\(grid); a crop of \(crop) pixels with patch "
                        + "size \(backbone.patchSize) gives \(side)×\(side): use larger crops (--global-size, --local-size) "
                        + "or a smaller --patch-size.")
            }
            if needs.needsImageEmbedding && !backbone.classToken && !providesEmbedding {
                throw TrainingError.incompatibleTasks(
                    "Task '\(entry.name)' reads an image embedding, but the backbone has no class token and no "
                        + "task provides one: enable the class token or add a task with an aggregation head.")
            }
        }
        for size in Set(views.sizes) where size % backbone.patchSize != 0 {
            throw TrainingError.incompatibleTasks(
                "Crop size \(size) is not a multiple of the patch size \(backbone.patchSize).")
        }
    }
}
