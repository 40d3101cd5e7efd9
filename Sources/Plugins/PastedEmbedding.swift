import SSLCore

/// Copy-paste embedding alignment: every student patch token on a garment of a pasted canvas is
/// pulled, by cosine similarity, toward the teacher's image embedding of that garment's image
/// seen alone.
///
/// `pastedino` with `--pastedino.pooling scene` asks the same patches for the teacher's prototype
/// distribution, read through DINO's head; this task asks for the embedding itself, in the space
/// the dense probes read (the backbone's normalised tokens), as the dense loss of CP² (Wang et
/// al., "CP²: Copy-Paste Contrastive Pretraining for Semantic Segmentation", ECCV 2022) compares
/// each pasted pixel's embedding with the pasted image's. The canvases come from ``RandomPaste``
/// (`--paste`), whose distractors are other images of the batch; patches on the background are
/// left out, and a crop that was not pasted shows its own image in every patch. The loss is
/// `1 − mean cos(student token, teacher embedding)` over those patches and the global crops.
public final class PastedEmbeddingTask: PretextTask {
    /// The task has no options besides its weight (`--weights`).
    public struct Configuration: TaskConfiguration {
        public init() {}
        public static let help: [String: String] = [:]
    }

    public static let name = "pasteembed"
    public static let summary =
        "Pulls the student's patch tokens on a pasted canvas's garments toward the teacher's embedding of each garment's image (cosine; after CP²)."

    public let heads = TaskHeads()
    public let state: [(name: String, tensor: Tensor)] = []

    public init(configuration: Configuration, setup: TaskSetup) throws {}

    public var requirements: TaskRequirements {
        TaskRequirements(
            minimumLocalViews: 1, needsPatchTokens: true, needsImageEmbedding: true, needsTeacher: true, needsCropGeometry: true)
    }

    public func loss(_ step: TaskStep) -> TaskLoss {
        let forward = step.forward
        let globalCount = forward.globalViewCount
        let teacherEmbeddings = GradientMode.withoutGradient {
            (0..<globalCount).map { forward.imageEmbedding($0, role: .teacher).l2Normalized() }
        }
        var tokens: [Tensor] = [], shownImages: [Int] = []
        for view in globalCount..<forward.views.count {
            let student = forward.student(view)
            let grid = PatchGrid(of: student)
            var rows: [Int] = []
            for (image, crop) in forward.cropGeometry(view).enumerated() {
                let shown = PastedDistillationTask.shownImages(of: crop, image: image, batchSize: forward.batchSize, grid: grid)
                for (patch, shownImage) in shown.enumerated() {
                    guard let shownImage else { continue }
                    rows.append(image * grid.count + patch)
                    shownImages.append(shownImage)
                }
            }
            guard !rows.isEmpty else { continue }
            let patches = student.outputPatches
            tokens.append(patches.reshaped([-1, patches.shape[2]]).gatherRows(rows))
        }
        let crops = Double((forward.views.count - globalCount) * forward.batchSize)
        let terms = ["aligned_patches_per_crop": Double(shownImages.count) / crops]
        guard !tokens.isEmpty else {
            // Every local crop shows only background: a zero that keeps the graph.
            return TaskLoss(total: forward.student(globalCount).outputPatches.sum() * 0, terms: terms)
        }
        let student = Tensor.concatenate(tokens).l2Normalized()
        let similarities = teacherEmbeddings.map { (student * $0.gatherRows(shownImages)).sum(axes: [1]).mean() }
        let meanSimilarity = similarities.dropFirst().reduce(similarities[0], +) / Float(globalCount)
        return TaskLoss(total: 1 - meanSimilarity, terms: terms)
    }
}
