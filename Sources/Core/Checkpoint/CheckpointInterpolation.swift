import Foundation

/// How ``Checkpoint/interpolate(from:to:weight:profile:output:)`` spreads the second
/// checkpoint's share over a network's tensors.
public enum InterpolationProfile: String, Sendable, CaseIterable {
    /// Every tensor takes the given share.
    case uniform
    /// The share rises linearly with depth: the given share at the input side of the backbone
    /// (the patch embedding, position table and class token), `share + (1 − share) · (i + 1) / depth`
    /// in block `i`, and all of the second checkpoint from the last block on (the final norm
    /// and the tasks' heads). A second phase's changes to the first layers cost most of what
    /// the first phase's image embedding knew, and its last layers hold most of what it taught.
    case depth

    /// The second checkpoint's share for the tensor `key` of `module` (`backbone`, or a task).
    func share(_ weight: Double, module: String, key: String, depth: Int) -> Double {
        guard self == .depth else { return weight }
        guard module == "backbone" else { return 1 }
        if key.hasPrefix("norm.") { return 1 }
        if let index = VisionTransformer.blockIndex(of: key) {
            return weight + (1 - weight) * Double(index + 1) / Double(depth)
        }
        return weight
    }
}

extension Checkpoint {
    /// Writes to `output` the checkpoint at `end` with its networks' weights moved back toward
    /// those at `start`: every tensor of the student and the teacher becomes
    /// `(1 − w) · start + w · end`, with `w = weight` (or, with the `depth` profile, rising from
    /// `weight` at the input to 1 at the last block).
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
    /// - Returns: The description recorded in the `interpolation` attribute.
    /// - Throws: ``CheckpointError`` when either file is not a readable checkpoint, when their
    ///   backbones differ, when a tensor has another shape in `start`, when `weight` is outside
    ///   0…1, or when `output` names one of the inputs.
    @discardableResult
    public static func interpolate(
        from start: String, to end: String, weight: Double, profile: InterpolationProfile = .uniform, output: String
    ) throws -> String {
        guard weight.isFinite, (0...1).contains(weight) else {
            throw CheckpointError(path: end, problem: "cannot be interpolated with weight \(weight): the weight of the second checkpoint must lie between 0 and 1")
        }
        let outputPath = URL(fileURLWithPath: output).standardizedFileURL.path
        for input in [start, end] where URL(fileURLWithPath: input).standardizedFileURL.path == outputPath {
            throw CheckpointError(path: input, problem: "is an input of the interpolation and would be overwritten; write it to another file")
        }
        let startFile = try open(start), endFile = try open(end)
        for (path, file) in [(start, startFile), (end, endFile)] where !file.contains("student") {
            throw CheckpointError(path: path, problem: "holds no student network (an exported backbone?); interpolate two checkpoints written by training")
        }
        let backbone = try backboneConfiguration(in: endFile, path: end)
        guard try backboneConfiguration(in: startFile, path: start) == backbone else {
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
                    let share = profile.share(weight, module: module, key: key, depth: backbone.depth)
                    interpolated.append((dataset, Float(1 - share) * first + Float(share) * second))
                }
            }
        }
        startFile.close()
        endFile.close()
        let shares = [weight, 1 - weight].map { String(format: "%.6g", $0) }
        let rising = profile == .depth ? ", the second's share rising with depth to 1 at the last block" : ""
        let description = "\(shares[0]) × \(end) + \(shares[1]) × \(start)\(rising)"
        try RunFolder.create(URL(fileURLWithPath: output).deletingLastPathComponent().path)
        try AtomicFile.write(to: output) { temporary in
            try FileManager.default.copyItem(atPath: end, toPath: temporary)
            let file = try HDF5File(path: temporary, mode: .readWrite)
            defer { file.close() }
            for (dataset, tensor) in interpolated { try file.overwrite(tensor, at: dataset) }
            try file.setAttribute("interpolation", description)
            try file.flush()
        }
        return description
    }
}
