/// Whether features come from the trained student or the EMA teacher.
public enum NetworkRole: Sendable {
    case student, teacher
}

/// What a task reads during one training step: the step's views and the backbone passes over
/// them, shared by every task. Each view runs through the student once and, when a task asks,
/// through the teacher once, however many tasks read it.
///
/// Consecutive views of equal size run as one batch (DINO's multi-crop grouping), and the
/// result is split back per view. Only the trainer builds one: it also cuts each task's graph
/// at the backbone's output, so that it can measure the gradient each task sends into the
/// backbone and then run the backbone's backward pass once for all of them.
public final class SharedForward {
    /// The images of each view, `[batch, 3, size, size]`, global views first.
    public let views: [Tensor]
    /// How many of the leading views are global crops.
    public let globalViewCount: Int
    /// Where each view's crops come from, `[view][image]`, when the step has it.
    private let geometry: [[CropGeometry]]?

    private let studentNetwork: FeatureNetwork
    private let teacherNetwork: FeatureNetwork?
    private var studentFeatures: [Int: BackboneFeatures] = [:]
    private var teacherFeatures: [Int: BackboneFeatures] = [:]
    private var studentEmbeddings: [Int: Tensor] = [:]
    private var teacherEmbeddings: [Int: Tensor] = [:]
    /// The student's backbone pass over each size group, keyed by the group's first view.
    private var studentPasses: [Int: BackboneFeatures] = [:]
    /// The leaves standing for the passes' last-block tokens in the current task's graph, and
    /// the gradient collected for each pass so far.
    private var leaves: [(group: Int, leaf: Tensor)] = []
    private var backboneGradients: [Int: Tensor] = [:]

    init(
        views: [Tensor], geometry: [[CropGeometry]]? = nil, globalViewCount: Int, student: FeatureNetwork,
        teacher: FeatureNetwork?
    ) {
        precondition(!views.isEmpty, "A training step needs at least one view.")
        let batch = views[0].shape[0]
        for (index, view) in views.enumerated() {
            precondition(
                view.rank == 4 && view.shape[0] == batch,
                "View \(index) is \(view.describe); every view must be [\(batch), 3, size, size].")
        }
        if let geometry {
            precondition(
                geometry.count == views.count && geometry.allSatisfy { $0.count == batch },
                "The step's crop geometry must have one entry per view and image.")
        }
        self.views = views
        self.geometry = geometry
        self.globalViewCount = globalViewCount
        studentNetwork = student
        teacherNetwork = teacher
    }

    /// Images per view.
    public var batchSize: Int { views[0].shape[0] }

    /// The side of the backbone's square patches, in pixels.
    public var patchSize: Int { studentNetwork.backbone.configuration.patchSize }

    /// Where the crops of `view` come from in their source images, one per image: compare two
    /// views' patches with ``CropGeometry/correspondingPatches(from:to:sourceGrid:targetGrid:)``.
    /// A task that reads it declares ``TaskRequirements/needsCropGeometry``.
    public func cropGeometry(_ view: Int) -> [CropGeometry] {
        guard let geometry else {
            preconditionFailure("A task read crop geometry without declaring needsCropGeometry; the step has none.")
        }
        return geometry[view]
    }

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
        let all: BackboneFeatures
        switch role {
        case .student:
            let pass = studentPass(group)
            if pass.lastBlock.requiresGradient {
                let leaf = pass.lastBlock.detached()
                leaf.requiresGradient = true
                leaves.append((group.lowerBound, leaf))
                all = studentNetwork.backbone.features(lastBlock: leaf, gridHeight: pass.gridHeight, gridWidth: pass.gridWidth)
            } else {
                all = pass
            }
        case .teacher:
            guard let teacherNetwork else {
                preconditionFailure("A task asked for teacher features, but the run has no teacher.")
            }
            all = GradientMode.withoutGradient { teacherNetwork.features(images(of: group)) }
        }
        let batch = batchSize
        for (offset, member) in group.enumerated() {
            let part = group.count == 1 ? all : all.samples((offset * batch)..<((offset + 1) * batch))
            if role == .student { studentFeatures[member] = part } else { teacherFeatures[member] = part }
        }
        return role == .student ? studentFeatures[view]! : teacherFeatures[view]!
    }

    /// The image-level embedding `[batch, dim]` of `view` for `role`: the image embedding a
    /// task provides (``PretextTask/imageEmbedding(of:role:)``), else the backbone's class token
    /// (see ``FeatureNetwork/imageEmbedding(of:)``).
    public func imageEmbedding(_ view: Int, role: NetworkRole) -> Tensor {
        if let cached = role == .student ? studentEmbeddings[view] : teacherEmbeddings[view] { return cached }
        let features = self.features(view, role: role)
        let embedding = role == .teacher
            ? GradientMode.withoutGradient { teacherNetwork!.imageEmbedding(of: features) }
            : studentNetwork.imageEmbedding(of: features)
        if role == .student { studentEmbeddings[view] = embedding } else { teacherEmbeddings[view] = embedding }
        return embedding
    }

    /// A student pass of the task's own over `images`, with the patches `masking` marks
    /// replaced by its token (iBOT's masked image modelling; see
    /// ``VisionTransformer/features(_:masking:recorder:)``). It is not shared: its gradient flows
    /// through the backbone with the task's backward pass.
    public func maskedStudent(_ images: Tensor, masking: (patches: Tensor, token: Tensor)) -> BackboneFeatures {
        studentNetwork.backbone.features(images, masking: masking)
    }

    /// Runs the student backbone over every view (once per size group), before any task reads it.
    func runStudentBackbone() {
        var view = 0
        while view < views.count {
            let group = sizeGroup(containing: view)
            _ = studentPass(group)
            view = group.upperBound
        }
    }

    /// Starts the next task's reads: its student features and embeddings are built on leaves
    /// of its own, so its backward pass ends at the backbone's output.
    func startTask() {
        studentFeatures.removeAll()
        studentEmbeddings.removeAll()
    }

    /// Moves the gradient that backward passes left at the tasks' leaves since the last call
    /// into this step's sums, and returns its norm: called after a task's backward pass, the
    /// norm of the gradient that task sends into the shared backbone.
    @discardableResult
    func collectBackboneGradient() -> Double {
        var squares = 0.0
        for (group, leaf) in leaves {
            guard let gradient = leaf.gradient else { continue }
            squares += gradient.sumOfSquares
            leaf.gradient = nil
            if let sum = backboneGradients[group] { sum.addInPlace(gradient) } else { backboneGradients[group] = gradient }
        }
        return squares.squareRoot()
    }

    /// Back-propagates the collected gradients through the student backbone, once per pass,
    /// accumulating into the backbone's parameters.
    func backwardThroughBackbone() {
        collectBackboneGradient()
        for (group, gradient) in backboneGradients {
            studentPasses[group]!.lastBlock.backward(seed: gradient)
        }
        leaves.removeAll()
        backboneGradients.removeAll()
    }

    /// The student's pass over the size group `group`, run on first use.
    private func studentPass(_ group: Range<Int>) -> BackboneFeatures {
        if let pass = studentPasses[group.lowerBound] { return pass }
        let pass = studentNetwork.features(images(of: group))
        studentPasses[group.lowerBound] = pass
        return pass
    }

    /// The images of the views `group`, as one batch.
    private func images(of group: Range<Int>) -> Tensor {
        group.count == 1 ? views[group.lowerBound] : Tensor.concatenate(Array(views[group]), axis: 0)
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
