import SSLCore
import SSLTestSupport
import XCTest

/// Reading PyTorch-layout fixture groups into our modules.
enum FixtureLoading {
    /// The datasets under `group` whose names start with `prefix`, keyed without the prefix.
    static func state(_ file: HDF5File, group: String, prefix: String = "") throws -> [String: Tensor] {
        var result: [String: Tensor] = [:]
        for key in try file.members(of: group) where key.hasPrefix(prefix) && file.isDataset("\(group)/\(key)") {
            result[String(key.dropFirst(prefix.count))] = try file.readTensor("\(group)/\(key)")
        }
        return result
    }

    /// The backbone configuration described by a fixture's root attributes.
    static func backbone(_ file: HDF5File, classToken: Bool = true, finalNorm: Bool = true) throws -> VisionTransformerConfiguration {
        VisionTransformerConfiguration(
            embedDimension: Int(try file.numericAttribute("embed_dim")), depth: Int(try file.numericAttribute("depth")),
            heads: Int(try file.numericAttribute("num_heads")), patchSize: Int(try file.numericAttribute("patch_size")),
            imageSize: Int(try file.numericAttribute("img_size")), classToken: classToken, finalNorm: finalNorm)
    }

    /// Loads `student/` and `teacher/` groups (PyTorch keys `backbone.*` and `<head>.*`) into a
    /// trainer whose task is named `task`.
    static func loadNetworks(_ file: HDF5File, into trainer: Trainer, task: String) throws {
        try loadNetworks(file, into: trainer) { key in key.hasPrefix("backbone.") ? key : "\(task).\(key)" }
    }

    /// Loads `student/` and `teacher/` groups into a trainer, naming each fixture key with `rename`.
    static func loadNetworks(_ file: HDF5File, into trainer: Trainer, rename: (String) -> String) throws {
        for (group, network) in [("student", trainer.student), ("teacher", trainer.teacher!)] {
            var state: [String: Tensor] = [:]
            for (key, value) in try Self.state(file, group: group) { state[rename(key)] = value }
            try network.load(state.filter { key, _ in network.stateDictionary().contains { $0.name == key } }, strict: false)
            let missing = network.stateDictionary().map(\.name).filter { state[$0] == nil }
            XCTAssertEqual(missing, [], "every parameter of the \(group) network comes from the fixture")
        }
    }

    /// The parameter names of a trainer's student that belong to the fixture's key space
    /// (`backbone.*` kept, `<task>.` stripped).
    static func fixtureKey(_ name: String, task: String) -> String {
        name.hasPrefix("\(task).") ? String(name.dropFirst(task.count + 1)) : name
    }
}
