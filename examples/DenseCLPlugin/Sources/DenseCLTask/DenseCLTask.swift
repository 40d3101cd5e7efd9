import SSLCore

/// A dense cross-view contrastive task in the spirit of DenseCL (Wang et al., CVPR 2021),
/// written outside the framework to show a plugin that reads crop geometry and keeps a teacher
/// head.
///
/// Where DenseCL matches the patches of two views by feature similarity, this task matches
/// them by where they come from: for each patch of one global view, the patch of the other
/// view that shows the same point of the image (``CropGeometry/correspondingPatches(from:to:sourceGrid:targetGrid:)``)
/// is its positive, every other patch of that view in the batch a negative. The student's
/// projected patch tokens are the queries; the teacher's (the EMA backbone through the EMA copy
/// of the projector) are the keys, an InfoNCE loss over them, symmetric in the two views.
public final class DenseCLTask: PretextTask {
    /// The task's options; the coding keys are the command-line names (`--densecl.dim`).
    public struct Configuration: TaskConfiguration {
        public var dimension = 128
        public var hiddenDimension = 256
        public var temperature = 0.2

        public init() {}

        enum CodingKeys: String, CodingKey {
            case dimension = "dim"
            case hiddenDimension = "hidden-dim"
            case temperature
        }

        public static let help: [String: String] = [
            "dim": "Output width of the dense projector.",
            "hidden-dim": "Hidden width of the dense projector.",
            "temperature": "Softmax temperature of the contrastive loss.",
        ]
    }

    public static let name = "densecl"
    public static let summary = "Dense contrastive learning between the matching patches of two crops (example plugin)."

    public let configuration: Configuration
    /// The student's projector of patch tokens, and its EMA copy in the teacher.
    public let projector: DenseProjector
    public let teacherProjector: DenseProjector
    public let heads: TaskHeads

    public init(configuration: Configuration, setup: TaskSetup) throws {
        self.configuration = configuration
        var generator = setup.generator(for: Self.name)
        func makeProjector() -> DenseProjector {
            DenseProjector(
                inputDimension: setup.backbone.embedDimension, hiddenDimension: configuration.hiddenDimension,
                outputDimension: configuration.dimension, generator: &generator)
        }
        projector = makeProjector()
        teacherProjector = makeProjector()
        // The trainer copies the projector into its teacher and updates that by EMA.
        heads = TaskHeads([.head("projector", projector, teacher: teacherProjector)])
    }

    public var requirements: TaskRequirements {
        TaskRequirements(minimumGlobalViews: 2, needsPatchTokens: true, needsCropGeometry: true)
    }

    /// No state besides the parameters.
    public var state: [(name: String, tensor: Tensor)] { [] }

    public func loss(_ step: TaskStep) -> TaskLoss {
        let (first, firstMatches) = contrastiveLoss(step.forward, query: 0, key: 1)
        let (second, secondMatches) = contrastiveLoss(step.forward, query: 1, key: 0)
        let patches = step.forward.batchSize * PatchGrid(of: step.forward.student(0)).count
        return TaskLoss(
            total: (first + second) * 0.5,
            terms: ["matched_fraction": Double(firstMatches + secondMatches) / Double(2 * patches)])
    }

    /// InfoNCE of the student's patches of view `query` that the view `key` also shows, against
    /// the teacher's patches of `key` (the corresponding one positive), and how many matched.
    private func contrastiveLoss(_ forward: SharedForward, query: Int, key: Int) -> (Tensor, Int) {
        let student = forward.student(query), teacher = forward.teacher(key)
        let queryGrid = PatchGrid(of: student), keyGrid = PatchGrid(of: teacher)
        var rows: [Int] = [], positives: [Int] = []
        for (image, (from, to)) in zip(forward.cropGeometry(query), forward.cropGeometry(key)).enumerated() {
            let matches = CropGeometry.correspondingPatches(from: from, to: to, sourceGrid: queryGrid, targetGrid: keyGrid)
            for (patch, match) in matches.enumerated() {
                guard let match else { continue }
                rows.append(image * queryGrid.count + patch)
                positives.append(image * keyGrid.count + match)
            }
        }
        let studentPatches = student.outputPatches
        let dimension = studentPatches.shape[2]
        // Crops that do not overlap give no pair: a zero that keeps the graph.
        guard !rows.isEmpty else { return (studentPatches.sum() * 0, 0) }
        let queries = projector(studentPatches.reshaped([-1, dimension]).gatherRows(rows)).l2Normalized()
        let keys = GradientMode.withoutGradient {
            teacherProjector(teacher.outputPatches.reshaped([-1, dimension])).l2Normalized()
        }
        let logits = queries.matmul(keys.transposed())
        return (logits.crossEntropy(labels: positives, temperature: Float(configuration.temperature)).mean(), rows.count)
    }
}

/// A two-layer projector applied to each patch token (DenseCL's dense `1×1`-convolution neck):
/// linear, ReLU, linear. Keys follow PyTorch's `nn.Sequential` numbering (`0`, `2`).
public final class DenseProjector: Module {
    public let hidden: Linear
    public let output: Linear

    public init(inputDimension: Int, hiddenDimension: Int, outputDimension: Int, generator: inout RandomGenerator) {
        hidden = Linear(inputFeatures: inputDimension, outputFeatures: hiddenDimension, generator: &generator)
        output = Linear(inputFeatures: hiddenDimension, outputFeatures: outputDimension, generator: &generator)
    }

    public override var submodules: [(name: String, module: Module)] { [("0", hidden), ("2", output)] }

    /// The projection of each row of `tokens` (`[rows, inputDimension]`).
    public func callAsFunction(_ tokens: Tensor) -> Tensor {
        output(hidden(tokens).relu())
    }
}
