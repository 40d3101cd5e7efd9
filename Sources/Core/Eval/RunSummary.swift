/// The final figures and description of a run, saved as `summary.json` in its folder.
public struct RunSummary: Codable, Sendable, Equatable {
    /// A picture to embed in the report.
    public struct Picture: Codable, Sendable, Equatable {
        /// The caption.
        public var title: String
        /// A PNG file, relative to the run folder or absolute.
        public var path: String

        public init(title: String, path: String) {
            self.title = title
            self.path = path
        }
    }

    /// The feature sources `ssl-run eval` probes, the prefixes of its metric names: the trained
    /// network, a randomly initialised one of the same architecture, raw pixels.
    public static let probeColumns = ["trained", "random", "pixels"]

    /// The run's display name (e.g. "DINO + SelfPatch").
    public var name: String
    /// Final figures by name (e.g. `trained/knn/top1@20`, `random/dense_retrieval/mIoU`, `pixels/knn/top1@20`).
    public var metrics: [String: Double]
    /// Descriptive settings by name (preset, method, duration, …).
    public var details: [String: String]
    /// Pictures to embed, in display order.
    public var pictures: [Picture]

    public init(name: String, metrics: [String: Double] = [:], details: [String: String] = [:], pictures: [Picture] = []) {
        self.name = name
        self.metrics = metrics
        self.details = details
        self.pictures = pictures
    }
}
