import Foundation

/// Backbone-only HDF5 files: the ViT's parameters at the root under their PyTorch keys, with
/// the architecture as a JSON attribute, so that
/// `{k: torch.from_numpy(v[()]) for k, v in h5py.File(path).items()}` is a state dict for a
/// DINO/timm `VisionTransformer`.
public enum BackboneFile {
    /// Writes `backbone` to `path` (atomically).
    public static func write(_ backbone: VisionTransformer, to path: String, source: String = "") throws {
        let configuration = String(decoding: try JSONEncoder().encode(backbone.configuration), as: UTF8.self)
        try HDF5File.writeAtomically(to: path) { file in
            try file.setAttribute("format_version", Double(Checkpoint.formatVersion))
            try file.setAttribute("kind", "backbone")
            try file.setAttribute("architecture", configuration)
            try file.setAttribute("source", source)
            for (name, tensor) in backbone.stateDictionary() { try file.write(tensor, at: name) }
        }
    }

    /// The backbone stored at `path`: a backbone file, or the `network` (`teacher` or
    /// `student`) of a checkpoint. A checkpoint without a teacher gives its student.
    public static func load(_ path: String, network: String = "teacher") throws -> VisionTransformer {
        let file: HDF5File
        do { file = try HDF5File(path: path) } catch {
            throw CheckpointError(path: path, problem: "is not a readable HDF5 file (missing, truncated or corrupt)")
        }
        if (try? file.stringAttribute("kind")) == "backbone" {
            let json = try file.stringAttribute("architecture")
            let configuration = try JSONDecoder().decode(VisionTransformerConfiguration.self, from: Data(json.utf8))
            let backbone = VisionTransformer(configuration)
            var state: [String: Tensor] = [:]
            for key in try file.members(of: "") where file.isDataset(key) {
                do { state[key] = try file.readTensor(key) } catch {
                    throw CheckpointError(path: path, problem: "dataset '\(key)' cannot be read: its checksum does not match (the file is damaged)")
                }
            }
            do { try backbone.load(state) } catch { throw CheckpointError(path: path, problem: "\(error)") }
            return backbone
        }
        file.close()
        let configuration = try Checkpoint.backboneConfiguration(at: path)
        let available = try HDF5File(path: path).contains(network) ? network : "student"
        let stored = try Checkpoint.networkState(at: path, network: available)
        let backbone = VisionTransformer(configuration)
        var state: [String: Tensor] = [:]
        for (key, value) in stored where key.hasPrefix("backbone.") { state[String(key.dropFirst("backbone.".count))] = value }
        do { try backbone.load(state) } catch { throw CheckpointError(path: path, problem: "\(error)") }
        return backbone
    }
}
