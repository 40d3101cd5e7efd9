/// Whether features come from the trained student or the EMA teacher.
public enum NetworkRole: Sendable {
    case student, teacher
}

/// One training step's views and the backbone passes over them, shared by every task: each
/// view runs through the student once and, when a task asks, through the teacher once.
///
/// Consecutive views of equal size run as one batch (DINO's multi-crop grouping), and the
/// result is split back per view.
public final class SharedForward {
    /// The images of each view, `[batch, 3, size, size]`, global views first.
    public let views: [Tensor]
    /// How many of the leading views are global crops.
    public let globalViewCount: Int
    /// The networks' backbones.
    public let studentBackbone: VisionTransformer
    public let teacherBackbone: VisionTransformer?

    private var studentFeatures: [Int: BackboneFeatures] = [:]
    private var teacherFeatures: [Int: BackboneFeatures] = [:]
    private var embeddingProvider: ((BackboneFeatures, NetworkRole) -> Tensor)?
    private var embeddings: [String: Tensor] = [:]

    public init(views: [Tensor], globalViewCount: Int, student: VisionTransformer, teacher: VisionTransformer?) {
        precondition(!views.isEmpty, "A training step needs at least one view.")
        let batch = views[0].shape[0]
        for (index, view) in views.enumerated() {
            precondition(
                view.rank == 4 && view.shape[0] == batch,
                "View \(index) is \(view.describe); every view must be [\(batch), 3, size, size].")
        }
        self.views = views
        self.globalViewCount = globalViewCount
        studentBackbone = student
        teacherBackbone = teacher
    }

    /// Images per view.
    public var batchSize: Int { views[0].shape[0] }

    /// The student's features for `view`.
    public func student(_ view: Int) -> BackboneFeatures {
        features(view, role: .student)
    }

    /// The teacher's features for `view` (constants: no gradient flows).
    public func teacher(_ view: Int) -> BackboneFeatures {
        features(view, role: .teacher)
    }

    /// The features of `view` for `role`.
    public func features(_ view: Int, role: NetworkRole) -> BackboneFeatures {
        if let cached = role == .student ? studentFeatures[view] : teacherFeatures[view] { return cached }
        let group = sizeGroup(containing: view)
        let images = group.count == 1 ? views[group.lowerBound] : Tensor.concatenate(Array(views[group]), axis: 0)
        let all: BackboneFeatures
        switch role {
        case .student:
            all = studentBackbone.features(images)
        case .teacher:
            guard let teacherBackbone else {
                preconditionFailure("A task asked for teacher features, but the run has no teacher.")
            }
            all = GradientMode.withoutGradient { teacherBackbone.features(images) }
        }
        let batch = batchSize
        for (offset, member) in group.enumerated() {
            let part = group.count == 1 ? all : all.samples((offset * batch)..<((offset + 1) * batch))
            if role == .student { studentFeatures[member] = part } else { teacherFeatures[member] = part }
        }
        return role == .student ? studentFeatures[view]! : teacherFeatures[view]!
    }

    /// Sets how the image-level embedding of a view is computed (by default the backbone's
    /// normed class token). A task that owns an aggregation head (SelfPatch in its original
    /// form) installs one so that image-level tasks read its class token.
    public func setImageEmbeddingProvider(_ provider: @escaping (BackboneFeatures, NetworkRole) -> Tensor) {
        embeddingProvider = provider
    }

    /// The image-level embedding `[batch, dim]` of `view` for `role`.
    public func imageEmbedding(_ view: Int, role: NetworkRole) -> Tensor {
        let key = "\(view)-\(role)"
        if let cached = embeddings[key] { return cached }
        let features = self.features(view, role: role)
        let embedding: Tensor
        if let embeddingProvider {
            embedding = role == .teacher
                ? GradientMode.withoutGradient { embeddingProvider(features, role) } : embeddingProvider(features, role)
        } else {
            guard let token = features.classToken else {
                preconditionFailure(
                    "The backbone has no class token and no task provides an image embedding; "
                        + "enable the class token or add a task with an aggregation head.")
            }
            embedding = token
        }
        embeddings[key] = embedding
        return embedding
    }

    /// The run of consecutive views with the same size as `view`.
    private func sizeGroup(containing view: Int) -> Range<Int> {
        let size = views[view].shape[2...]
        var start = view, end = view + 1
        while start > 0 && views[start - 1].shape[2...] == size { start -= 1 }
        while end < views.count && views[end].shape[2...] == size { end += 1 }
        return start..<end
    }
}
