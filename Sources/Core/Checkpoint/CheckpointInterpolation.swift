import Foundation

extension Checkpoint {
    /// Writes to `output` the checkpoint at `end` with its networks' weights moved back toward
    /// those at `start`: every tensor of the student and the teacher becomes
    /// `(1 − weight) · start + weight · end`.
    ///
    /// This is weight-space ensembling of a fine-tuned network with the one it started from
    /// (WiSE-FT: Wortsman et al., "Robust fine-tuning of zero-shot models", CVPR 2022). When the
    /// run at `end` was initialised from `start` (`ssl-run --init-from`), the two lie in one basin,
    /// and points between them keep much of what each does well: what a second phase taught and
    /// what the first phase knew. Tensors that `start` lacks (a head the second run added) are
    /// kept as `end` has them; the optimizer state, the tasks' state, the configuration and the
    /// position are `end`'s, and the file records the interpolation in its `interpolation`
    /// attribute. The file is written atomically.
    ///
    /// - Throws: ``CheckpointError`` when either file is not a readable checkpoint, when their
    ///   backbones differ, when a tensor has another shape in `start`, when `weight` is outside
    ///   0…1, or when `output` names one of the inputs.
    public static func interpolate(from start: String, to end: String, weight: Double, output: String) throws {
        guard weight.isFinite, (0...1).contains(weight) else {
            throw CheckpointError(path: end, problem: "cannot be interpolated with weight \(weight): the weight of the second checkpoint must lie between 0 and 1")
        }
        let outputPath = URL(fileURLWithPath: output).standardizedFileURL.path
        for input in [start, end] where URL(fileURLWithPath: input).standardizedFileURL.path == outputPath {
            throw CheckpointError(path: input, problem: "is an input of the interpolation and would be overwritten; write it to another file")
        }
        let startFile = try open(start), endFile = try open(end)
        guard try backboneConfiguration(at: start) == backboneConfiguration(at: end) else {
            throw CheckpointError(path: start, problem: "has another backbone architecture than \(end); only checkpoints of one architecture can be interpolated")
        }
        var interpolated: [(dataset: String, tensor: Tensor)] = []
        for network in ["student", "teacher"] where endFile.contains(network) {
            guard startFile.contains(network) else {
                throw CheckpointError(path: start, problem: "has no '\(network)' network to interpolate with \(end)'s")
            }
            for module in try endFile.members(of: network) {
                for key in try endFile.members(of: "\(network)/\(module)") {
                    let dataset = "\(network)/\(module)/\(key)"
                    guard startFile.contains(dataset) else { continue }
                    let first = try read(startFile, dataset, start), second = try read(endFile, dataset, end)
                    guard first.shape == second.shape else {
                        throw CheckpointError(path: start, problem: "has '\(dataset)' of shape \(first.shape), where \(end) has \(second.shape); it cannot be interpolated")
                    }
                    interpolated.append((dataset, Float(1 - weight) * first + Float(weight) * second))
                }
            }
        }
        startFile.close()
        endFile.close()
        try AtomicFile.write(to: output) { temporary in
            try FileManager.default.copyItem(atPath: end, toPath: temporary)
            let file = try HDF5File(path: temporary, mode: .readWrite)
            defer { file.close() }
            for (dataset, tensor) in interpolated { try file.overwrite(tensor, at: dataset) }
            let weights = [weight, 1 - weight].map { String(format: "%.6g", $0) }
            try file.setAttribute("interpolation", "\(weights[0]) × \(end) + \(weights[1]) × \(start)")
            try file.flush()
        }
    }
}
