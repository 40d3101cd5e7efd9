/// What ``Trainer/initialize(from:)`` did with each tensor.
public struct InitializationReport: CustomStringConvertible {
    /// Parameters and buffers set from the source.
    public var loaded: [String] = []
    /// Source tensors with no counterpart, or of another shape (with the reason).
    public var skipped: [String] = []
    /// Parameters and buffers of the run that the source did not have: they keep their fresh
    /// initialisation.
    public var fresh: [String] = []

    public var description: String {
        func list(_ names: [String]) -> String {
            names.count <= 6 ? names.joined(separator: ", ") : names.prefix(6).joined(separator: ", ") + ", … (\(names.count) in all)"
        }
        return """
            Loaded \(loaded.count) tensors\(loaded.isEmpty ? "" : ": " + list(loaded))
            Skipped \(skipped.count)\(skipped.isEmpty ? "" : ": " + list(skipped))
            Newly initialised \(fresh.count)\(fresh.isEmpty ? "" : ": " + list(fresh))
            """
    }
}

extension Trainer {
    /// Sets every parameter and buffer of the student, and of the teacher, that `state` has
    /// under the same network name (`backbone.blocks.0…`, `dino.head…`) with the same shape;
    /// everything else keeps its initialisation. Used to continue a run with other tasks
    /// (e.g. a DINO run as DINO + SelfPatch).
    @discardableResult
    public func initialize(from state: [String: Tensor]) -> InitializationReport {
        var report = InitializationReport()
        let own = Dictionary(uniqueKeysWithValues: student.stateDictionary().map { ($0.name, $0.tensor) })
        for (name, value) in state.sorted(by: { $0.key < $1.key }) {
            guard let target = own[name] else {
                report.skipped.append("\(name) (not in this run)")
                continue
            }
            guard target.shape == value.shape else {
                report.skipped.append("\(name) (\(value.shape) in the file, \(target.shape) here)")
                continue
            }
            report.loaded.append(name)
        }
        report.fresh = own.keys.filter { state[$0] == nil }.sorted()
        let loadable = Set(report.loaded)
        for (name, tensor) in student.stateDictionary() where loadable.contains(name) { tensor.assign(state[name]!) }
        if let teacher {
            for (name, tensor) in teacher.stateDictionary() where loadable.contains(name) { tensor.assign(state[name]!) }
        }
        return report
    }
}

extension Checkpoint {
    /// The network state to initialise a run from: a checkpoint's teacher (or student), or a
    /// backbone file's tensors as `backbone.*`.
    public static func initializationState(from path: String) throws -> [String: Tensor] {
        let file: HDF5File
        do { file = try HDF5File(path: path) } catch {
            throw CheckpointError(path: path, problem: "is not a readable HDF5 file (missing, truncated or corrupt)")
        }
        let isBackbone = (try? file.stringAttribute("kind")) == "backbone"
        let hasTeacher = file.contains("teacher")
        file.close()
        if isBackbone {
            let backbone = try BackboneFile.load(path)
            return Dictionary(uniqueKeysWithValues: backbone.stateDictionary().map { ("backbone.\($0.name)", $0.tensor) })
        }
        return try networkState(at: path, network: hasTeacher ? "teacher" : "student")
    }
}
