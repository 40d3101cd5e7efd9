import CZlib
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Where a run stands: the next step to take and the data cursor.
public struct TrainingProgress: Codable, Sendable, Equatable {
    /// The epoch of the next step.
    public var epoch: Int
    /// The index of the next step within its epoch.
    public var stepInEpoch: Int
    /// The length in bytes of the run's `metrics.jsonl` when the checkpoint was written; lines
    /// past it belong to steps a resumed run takes again.
    public var metricsLength: Int?
    /// The length in bytes of the run's TensorBoard event file at the checkpoint, likewise.
    public var eventsLength: Int?

    public init(epoch: Int = 0, stepInEpoch: Int = 0, metricsLength: Int? = nil, eventsLength: Int? = nil) {
        self.epoch = epoch
        self.stepInEpoch = stepInEpoch
        self.metricsLength = metricsLength
        self.eventsLength = eventsLength
    }
}

/// The logging, saving and evaluation intervals of a run, kept in its checkpoint so that a
/// resumed run keeps them unless told otherwise.
public struct RunIntervals: Codable, Sendable, Equatable {
    /// Log metrics every this many steps.
    public var logEverySteps: Int
    /// Keep a checkpoint copy every this many epochs (0: only the latest).
    public var saveEveryEpochs: Int
    /// Evaluate every this many epochs (0: never).
    public var evaluateEveryEpochs: Int

    public init(logEverySteps: Int, saveEveryEpochs: Int, evaluateEveryEpochs: Int) {
        self.logEverySteps = logEverySteps
        self.saveEveryEpochs = saveEveryEpochs
        self.evaluateEveryEpochs = evaluateEveryEpochs
    }
}

/// A training checkpoint: one self-describing HDF5 file with everything needed to continue a
/// run exactly, laid out so that other languages read it by PyTorch state-dict key.
///
/// ```text
/// /                       attributes: format_version, library_version, configuration (JSON),
///                         epoch, step_in_epoch, metrics_length, events_length, intervals
///                         (JSON), run_checksum (CRC-32 of the attributes before it)
/// /student/backbone/<key> the trained backbone (e.g. blocks.0.attn.qkv.weight)
/// /student/<task>/<key>   each task's heads (e.g. /student/dino/head.mlp.0.weight)
/// /teacher/…              the EMA network, same layout
/// /optimizer/exp_avg/<network key>, /optimizer/exp_avg_sq/<network key>  (attribute `step`)
/// /tasks/<task>/<name>    task state (centres, queues)
/// /random/backbone.drop_path  the drop-path generator's state (uint64 words stored as int64)
/// ```
///
/// Every dataset carries a Fletcher-32 checksum; files are written to a temporary file in the
/// same folder, flushed, synced and renamed over the previous one, so a crash at any moment
/// leaves the last complete checkpoint in place. The attributes that define the run carry a
/// CRC-32 (`run_checksum`), checked whenever the file is opened, so an altered configuration
/// or position is refused rather than trained on.
public enum Checkpoint {
    /// The layout version written and accepted.
    public static let formatVersion = 1
    /// This library's version, recorded in every file.
    public static let libraryVersion = "0.1.0"

    /// The intervals stored in the checkpoint at `path`, if it has them.
    public static func intervals(at path: String) throws -> RunIntervals? {
        let file = try open(path)
        guard let json = try? file.stringAttribute("intervals") else { return nil }
        return try? JSONDecoder().decode(RunIntervals.self, from: Data(json.utf8))
    }

    /// The run configuration stored in the checkpoint at `path`, as JSON.
    static func configurationJSON(at path: String) throws -> String {
        try open(path).stringAttribute("configuration")
    }

    /// The backbone architecture of the run stored in the checkpoint at `path`.
    static func backboneConfiguration(at path: String) throws -> VisionTransformerConfiguration {
        try backboneConfiguration(in: try open(path), path: path)
    }

    /// The backbone architecture of the run stored in the open checkpoint `file` (read from
    /// `path`, which errors name).
    static func backboneConfiguration(in file: HDF5File, path: String) throws -> VisionTransformerConfiguration {
        struct Stored: Decodable { var backbone: VisionTransformerConfiguration }
        do {
            return try JSONDecoder().decode(Stored.self, from: Data(try file.stringAttribute("configuration").utf8)).backbone
        } catch let error as DecodingError {
            throw CheckpointError(path: path, problem: "its configuration attribute has no valid backbone (\(error))")
        }
    }

    /// The parameters and buffers of one network stored in the checkpoint (`student` or
    /// `teacher`), by network key (`backbone.blocks.0…`, `dino.head…`).
    public static func networkState(at path: String, network: String = "teacher") throws -> [String: Tensor] {
        try readNetwork(try open(path), group: network, path: path)
    }

    // MARK: Helpers

    /// The checkpoint's dataset path for a network key: the first component becomes a group.
    static func datasetPath(_ key: String) -> String {
        guard let dot = key.firstIndex(of: ".") else { return key }
        return key[..<dot] + "/" + key[key.index(after: dot)...]
    }

    static func open(_ path: String) throws -> HDF5File {
        var status = stat()
        guard stat(path, &status) == 0 else {
            throw CheckpointError(path: path, problem: "cannot be read (\(String(cString: strerror(errno))))")
        }
        guard (status.st_mode & S_IFMT) == S_IFREG else {
            throw CheckpointError(path: path, problem: "is not a file")
        }
        let file: HDF5File
        do { file = try HDF5File(path: path) } catch {
            throw CheckpointError(
                path: path,
                problem: status.st_size == 0 ? "is empty (a run killed before its first checkpoint?)" : "is not a readable HDF5 file (truncated or corrupt)")
        }
        guard let version = try? file.numericAttribute("format_version") else {
            throw CheckpointError(path: path, problem: "is not a SwiftSSL checkpoint (no format_version attribute)")
        }
        guard Int(version) == formatVersion else {
            throw CheckpointError(path: path, problem: "has format version \(Int(version)); this build reads version \(formatVersion)")
        }
        try RunAttributes(reading: file).verify(path: path)
        return file
    }

    static func writeNetwork(_ network: Module, group: String, file: HDF5File) throws {
        for (name, tensor) in network.stateDictionary() { try file.write(tensor, at: "\(group)/\(datasetPath(name))") }
    }

    static func readNetwork(_ file: HDF5File, group: String, path: String) throws -> [String: Tensor] {
        guard file.contains(group) else { throw CheckpointError(path: path, problem: "has no '\(group)' group") }
        var state: [String: Tensor] = [:]
        for module in try file.members(of: group) {
            for key in try file.members(of: "\(group)/\(module)") {
                state["\(module).\(key)"] = try read(file, "\(group)/\(module)/\(key)", path)
            }
        }
        return state
    }

    static func read(_ file: HDF5File, _ dataset: String, _ path: String) throws -> Tensor {
        do { return try file.readTensor(dataset) } catch {
            throw CheckpointError(path: path, problem: "dataset '\(dataset)' cannot be read: it is missing or its checksum does not match (the file is damaged)")
        }
    }
}

/// The root attributes that define a run, with a CRC-32 over them (`run_checksum`), so that a
/// changed digit of the configuration or position is detected when the file is opened.
struct RunAttributes {
    /// The protected numeric attributes, by name.
    var numbers: [String: Double] = [:]
    /// The protected string attributes, by name.
    var texts: [String: String] = [:]
    /// The checksum read from a file (`nil` in files from before checksums, and when writing).
    private var storedChecksum: String?

    static let checksumName = "run_checksum"
    private static let numberNames = ["format_version", "epoch", "step_in_epoch", "metrics_length"]
    /// `metrics` (the last logged metrics) is written by older versions only.
    private static let textNames = ["configuration", "metrics", "intervals"]

    init() {}

    /// Reads the protected attributes present in `file`.
    init(reading file: HDF5File) throws {
        for name in Self.numberNames { numbers[name] = try? file.numericAttribute(name) }
        for name in Self.textNames { texts[name] = try? file.stringAttribute(name) }
        storedChecksum = try? file.stringAttribute(Self.checksumName)
    }

    /// The CRC-32 of every protected attribute, as 8 hexadecimal digits.
    var checksum: String {
        var canonical = ""
        for name in Self.numberNames { if let value = numbers[name] { canonical += "\(name)=\(value)\n" } }
        for name in Self.textNames { if let value = texts[name] { canonical += "\(name)=\(value)\n" } }
        let bytes = Array(canonical.utf8)
        let value = bytes.withUnsafeBufferPointer { crc32(0, $0.baseAddress, uInt($0.count)) }
        return String(format: "%08x", UInt32(truncatingIfNeeded: value))
    }

    /// Writes the attributes and their checksum.
    func write(to file: HDF5File) throws {
        for (name, value) in numbers { try file.setAttribute(name, value) }
        for (name, value) in texts { try file.setAttribute(name, value) }
        try file.setAttribute(Self.checksumName, checksum)
    }

    /// Throws when the file's checksum does not match its attributes.
    func verify(path: String) throws {
        guard let storedChecksum, storedChecksum != checksum else { return }
        throw CheckpointError(
            path: path,
            problem: "has run attributes (configuration, epoch, step) that do not match their checksum: the file was "
                + "altered or damaged; use an earlier checkpoint copy or start a new run")
    }
}

/// A checkpoint that cannot be used, naming the file and the reason.
public struct CheckpointError: Error, CustomStringConvertible {
    public var path: String
    public var problem: String

    public var description: String { "Checkpoint \(path) \(problem)." }
}
