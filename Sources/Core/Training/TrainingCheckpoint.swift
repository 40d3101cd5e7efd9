import Foundation

/// A checkpoint of a ``Trainer``: its networks, optimizer state, task state and generators,
/// with the run's recipe (see ``Checkpoint`` for the layout).
extension Checkpoint {
    /// Writes the full state of `trainer` and `progress` to `path`, atomically.
    ///
    /// - Parameters:
    ///   - intervals: the run's intervals, restored by ``intervals(at:)``.
    public static func save(
        _ trainer: Trainer, recipe: TrainingRecipe, progress: TrainingProgress, intervals: RunIntervals? = nil,
        to path: String
    ) throws {
        var attributes = RunAttributes()
        attributes.numbers["format_version"] = Double(formatVersion)
        attributes.texts["configuration"] = try recipe.jsonString()
        attributes.numbers["epoch"] = Double(progress.epoch)
        attributes.numbers["step_in_epoch"] = Double(progress.stepInEpoch)
        if let length = progress.metricsLength { attributes.numbers["metrics_length"] = Double(length) }
        if let length = progress.eventsLength { attributes.numbers["events_length"] = Double(length) }
        if let intervals { attributes.texts["intervals"] = String(decoding: try JSONEncoder().encode(intervals), as: UTF8.self) }
        try HDF5File.writeAtomically(to: path) { file in
            try file.setAttribute("library_version", libraryVersion)
            try attributes.write(to: file)
            try writeNetwork(trainer.student, group: "student", file: file)
            if let teacher = trainer.teacher { try writeNetwork(teacher, group: "teacher", file: file) }
            for (name, state) in trainer.optimizer.state {
                let path = datasetPath(name)
                try file.write(state.firstMoment, at: "optimizer/exp_avg/\(path)")
                try file.write(state.secondMoment, at: "optimizer/exp_avg_sq/\(path)")
                try file.setAttribute("step", Double(state.step), of: "optimizer/exp_avg/\(path)")
            }
            for entry in trainer.tasks {
                for (name, tensor) in entry.task.state { try file.write(tensor, at: "tasks/\(entry.name)/\(name)") }
            }
            // The drop-path generator, so that a resumed run draws the same stochastic depth.
            try file.write(integers: trainer.backbone.generator.stateWords.map { Int(Int64(bitPattern: $0)) }, at: dropPathDataset)
        }
    }

    /// Restores `trainer` from the checkpoint at `path`, which must come from the same
    /// configuration, and returns where the run stands.
    ///
    /// - Throws: ``CheckpointError`` naming the file and what does not fit; `trainer` is left
    ///   unchanged unless every check passed.
    public static func restore(
        _ trainer: Trainer, from path: String
    ) throws -> TrainingProgress {
        let file = try open(path)
        var states: [(Module, [String: Tensor])] = [(trainer.student, try readNetwork(file, group: "student", path: path))]
        if let teacher = trainer.teacher { states.append((teacher, try readNetwork(file, group: "teacher", path: path))) }
        var moments: [String: AdamW.State] = [:]
        if file.contains("optimizer/exp_avg") {
            for (name, _) in trainer.student.trainableParameters() where file.contains("optimizer/exp_avg/\(datasetPath(name))") {
                let key = datasetPath(name)
                moments[name] = AdamW.State(
                    step: Int(try file.numericAttribute("step", of: "optimizer/exp_avg/\(key)")),
                    firstMoment: try read(file, "optimizer/exp_avg/\(key)", path),
                    secondMoment: try read(file, "optimizer/exp_avg_sq/\(key)", path))
            }
        }
        var taskStates: [(Tensor, Tensor)] = []
        for entry in trainer.tasks {
            for (name, tensor) in entry.task.state {
                let value = try read(file, "tasks/\(entry.name)/\(name)", path)
                guard value.shape == tensor.shape else {
                    throw CheckpointError(path: path, problem: "task state '\(entry.name)/\(name)' is \(value.shape), the run expects \(tensor.shape)")
                }
                taskStates.append((tensor, value))
            }
        }
        let dropPath = file.contains(dropPathDataset)
            ? try file.readIntegers(dropPathDataset).map { UInt64(bitPattern: Int64($0)) } : nil
        let progress = TrainingProgress(
            epoch: Int(try file.numericAttribute("epoch")), stepInEpoch: Int(try file.numericAttribute("step_in_epoch")),
            metricsLength: (try? file.numericAttribute("metrics_length")).map { Int($0) },
            eventsLength: (try? file.numericAttribute("events_length")).map { Int($0) })
        for (module, state) in states {
            do { try module.checkLoadable(state) } catch { throw CheckpointError(path: path, problem: "\(error)") }
        }
        // Every check passed: apply.
        for (module, state) in states { try module.load(state) }
        for (name, state) in moments { trainer.optimizer.setState(state, for: name) }
        for (tensor, value) in taskStates { tensor.assign(value) }
        if let dropPath, dropPath.count == 4 { trainer.backbone.generator = RandomGenerator(stateWords: dropPath) }
        return progress
    }

    /// The dataset of the drop-path generator's state (uint64 words stored as int64).
    private static let dropPathDataset = "random/backbone.drop_path"

    /// The recipe stored in the checkpoint at `path`.
    public static func recipe(at path: String) throws -> TrainingRecipe {
        let json = try configurationJSON(at: path)
        do {
            return try JSONDecoder().decode(TrainingRecipe.self, from: Data(json.utf8))
        } catch {
            throw CheckpointError(path: path, problem: "its configuration attribute is not a valid run configuration (\(error))")
        }
    }
}

extension TrainingRecipe {
    /// The recipe as sorted, compact JSON.
    public func jsonString() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }
}
