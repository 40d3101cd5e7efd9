import SSLCore

/// Region-level self-distillation: the teacher groups the patches of each global crop into
/// regions, and the student's tokens of every other crop, pooled over the patches that show the
/// same region, are distilled toward the teacher's pooled region.
///
/// The loss on mask-pooled patch tokens across views follows DetCon (Hénaff et al., "Efficient
/// visual pretraining with contrastive detection", ICCV 2021); the masks come, as in ODIN
/// (Hénaff et al., "Object discovery and representation networks", ECCV 2022), from k-means on
/// the teacher's own patch tokens, so no segmentation is supplied. The target is DINO's: a
/// projection head, the teacher's centred and sharpened prototype distribution, cross-entropy.
///
/// Per image and global crop, the teacher's output patch tokens (after the final norm) are
/// clustered by cosine k-means into at most `regions` groups. A region's teacher embedding is the
/// mean of its tokens. For every other crop of the image, each student patch is assigned the
/// region of the teacher patch that shows the same source point
/// (``CropGeometry/correspondingPatches(from:to:sourceGrid:targetGrid:)``); the mean of the
/// student tokens of a region is its student embedding. Every pooled token therefore has to
/// say what the whole region is, wherever the crop cuts it.
public final class RegionDistillationTask: DistillingTask {
    public struct Configuration: TaskConfiguration {
        /// The head and its targets.
        public var distillation = DistillationSettings(outputDimension: 4096)
        /// The most regions per crop (k of k-means).
        public var regions = 4
        /// Lloyd iterations of k-means.
        public var clusteringIterations = 10

        public init() {}

        enum CodingKeys: String, CodingKey {
            case regions
            case clusteringIterations = "kmeans-iterations"
        }

        // The distillation options sit beside this task's own, under the same names.
        public init(from decoder: Decoder) throws {
            distillation = try DistillationSettings(from: decoder)
            let container = try decoder.container(keyedBy: CodingKeys.self)
            regions = try container.decode(Int.self, forKey: .regions)
            clusteringIterations = try container.decode(Int.self, forKey: .clusteringIterations)
        }

        public func encode(to encoder: Encoder) throws {
            try distillation.encode(to: encoder)
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(regions, forKey: .regions)
            try container.encode(clusteringIterations, forKey: .clusteringIterations)
        }

        public static let help = DistillationSettings.help.merging([
            "out-dim": "Prototypes K of the region head.",
            "regions": "The most regions per crop: k of the k-means over the teacher's patch tokens.",
            "kmeans-iterations": "Lloyd iterations of that k-means.",
        ]) { $1 }
    }

    public static let name = "regiondino"
    public static let summary =
        "Region-level distillation over k-means regions of the teacher's patch tokens (after DetCon and ODIN, Hénaff et al.)."

    public let configuration: Configuration
    /// The region head and its targets.
    public let distillation: Distillation
    public let heads: TaskHeads

    public init(configuration: Configuration, setup: TaskSetup) throws {
        guard configuration.regions >= 2 else {
            throw TaskConfigurationError("--regiondino.regions must be at least 2, got \(configuration.regions).")
        }
        guard configuration.clusteringIterations >= 1 else {
            throw TaskConfigurationError(
                "--regiondino.kmeans-iterations must be at least 1, got \(configuration.clusteringIterations).")
        }
        guard setup.views.count >= 2 else {
            throw TaskConfigurationError("regiondino needs at least 2 crops per image (it distils a crop's regions into the others).")
        }
        self.configuration = configuration
        var generator = setup.generator(for: Self.name)
        distillation = try Distillation(
            task: Self.name, settings: configuration.distillation, inputDimension: setup.backbone.embedDimension, setup: setup,
            generator: &generator)
        heads = TaskHeads([.head("head", distillation.head, teacher: distillation.teacherHead)])
    }

    public var requirements: TaskRequirements {
        TaskRequirements(needsPatchTokens: true, minimumPatchGrid: 2, needsCropGeometry: true)
    }

    public func loss(_ step: TaskStep) -> TaskLoss {
        let forward = step.forward
        var total: Tensor?
        var pairs = 0
        var teacherLogits: [Tensor] = []
        var health = TaskHealth()
        var regionCount = 0
        for target in 0..<forward.globalViewCount {
            let teacher = forward.teacher(target)
            let teacherGrid = PatchGrid(of: teacher)
            let teacherTokens = teacher.outputPatches.reshaped([-1, teacher.outputPatches.shape[2]])
            let assignment = RegionClustering(
                regions: configuration.regions, iterations: configuration.clusteringIterations
            ).assign(teacherTokens, patchesPerImage: teacherGrid.count)
            let logits = GradientMode.withoutGradient {
                distillation.teacherHead(assignment.pooling(patchesPerImage: teacherGrid.count).matmul(teacherTokens))
            }
            teacherLogits.append(logits)
            regionCount += assignment.regionCount
            let probabilities = distillation.teacherTargets(logits, iteration: step.iteration, collective: step.collective)
            if target == 0 { health.teacher = TeacherDistribution(probabilities: probabilities) }
            for view in 0..<forward.views.count where view != target {
                let student = forward.student(view)
                let studentGrid = PatchGrid(of: student)
                let studentCrops = forward.cropGeometry(view), teacherCrops = forward.cropGeometry(target)
                let studentRegions = (0..<forward.batchSize).map { image in
                    CropGeometry.correspondingPatches(
                        from: studentCrops[image], to: teacherCrops[image],
                        sourceGrid: studentGrid, targetGrid: teacherGrid
                    ).map { match in match.map { assignment.region(image: image, patch: $0) } }
                }
                let pooling = RegionPooling(regions: studentRegions, patchesPerImage: studentGrid.count)
                guard !pooling.rows.isEmpty else { continue }
                let studentTokens = student.outputPatches.reshaped([-1, student.outputPatches.shape[2]])
                let studentLogits = distillation.head(pooling.matrix.matmul(studentTokens))
                let term = distillation.loss(
                    studentLogits: studentLogits,
                    targets: probabilities.gatherRows(pooling.rows.map { assignment.row(image: $0.image, region: $0.region) }))
                total = total.map { $0 + term } ?? term
                pairs += 1
            }
        }
        distillation.targets.update(with: teacherLogits, collective: step.collective)
        // Crops that share no point give no pair: a zero that keeps the graph.
        let loss = total.map { $0 / Float(pairs) } ?? forward.student(0).outputPatches.sum() * 0
        return TaskLoss(
            total: loss,
            terms: ["regions_per_crop": Double(regionCount) / Double(forward.globalViewCount * forward.batchSize)],
            health: health)
    }
}

/// Cosine k-means over each image's patch tokens: which region each patch belongs to.
struct RegionClustering {
    /// The most regions per image.
    var regions: Int
    /// Lloyd iterations.
    var iterations: Int

    /// Clusters the rows of `tokens` (`[images · patchesPerImage, dim]`) image by image.
    ///
    /// The first centre is the patch least similar to the image's mean token, each next one the
    /// patch least similar to its nearest centre so far (farthest-point seeding, deterministic);
    /// then `iterations` rounds assign every patch to its most similar centre and move each
    /// centre to the normalised mean of its patches. Regions left empty are dropped.
    func assign(_ tokens: Tensor, patchesPerImage: Int) -> RegionAssignment {
        let dimension = tokens.shape[1], images = tokens.shape[0] / patchesPerImage
        let normalized = GradientMode.withoutGradient { tokens.l2Normalized() }
        return normalized.withElements { values in
            var labels: [[Int]] = []
            for image in 0..<images {
                let base = image * patchesPerImage * dimension
                func dot(_ patch: Int, _ vector: [Float]) -> Float {
                    var sum: Float = 0
                    for index in 0..<dimension { sum += values[base + patch * dimension + index] * vector[index] }
                    return sum
                }
                func token(_ patch: Int) -> [Float] {
                    Array(values[(base + patch * dimension)..<(base + (patch + 1) * dimension)])
                }
                var mean = [Float](repeating: 0, count: dimension)
                for patch in 0..<patchesPerImage {
                    for index in 0..<dimension { mean[index] += values[base + patch * dimension + index] }
                }
                var centers = [token((0..<patchesPerImage).min { dot($0, mean) < dot($1, mean) }!)]
                var nearest = (0..<patchesPerImage).map { dot($0, centers[0]) }
                while centers.count < min(regions, patchesPerImage) {
                    let farthest = (0..<patchesPerImage).min { nearest[$0] < nearest[$1] }!
                    centers.append(token(farthest))
                    for patch in 0..<patchesPerImage { nearest[patch] = max(nearest[patch], dot(patch, centers.last!)) }
                }
                var label = [Int](repeating: 0, count: patchesPerImage)
                for _ in 0..<iterations {
                    for patch in 0..<patchesPerImage {
                        let similarities = centers.map { dot(patch, $0) }
                        label[patch] = similarities.indices.max { similarities[$0] < similarities[$1] }!
                    }
                    for center in centers.indices {
                        var sum = [Float](repeating: 0, count: dimension)
                        var members = 0
                        for patch in 0..<patchesPerImage where label[patch] == center {
                            for index in 0..<dimension { sum[index] += values[base + patch * dimension + index] }
                            members += 1
                        }
                        guard members > 0 else { continue }
                        let norm = max(sum.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)
                        centers[center] = sum.map { $0 / norm }
                    }
                }
                labels.append(label)
            }
            return RegionAssignment(labels: labels)
        }
    }
}

/// The region of every patch of every image, renumbered so that each image's non-empty regions
/// are `0..<count` in order of first appearance.
struct RegionAssignment {
    /// `labels[image][patch]`.
    let labels: [[Int]]
    /// For each image, the row of its first region among all images' regions.
    private let firstRow: [Int]
    /// Regions over all images.
    let regionCount: Int

    init(labels raw: [[Int]]) {
        var labels: [[Int]] = []
        var firstRow: [Int] = []
        var rows = 0
        for image in raw {
            var renumbered: [Int: Int] = [:]
            labels.append(image.map { label in
                if let known = renumbered[label] { return known }
                renumbered[label] = renumbered.count
                return renumbered.count - 1
            })
            firstRow.append(rows)
            rows += renumbered.count
        }
        self.labels = labels
        self.firstRow = firstRow
        regionCount = rows
    }

    /// The region of `patch` in `image`.
    func region(image: Int, patch: Int) -> Int { labels[image][patch] }

    /// The row of `region`, one of the regions of `image`, among all regions.
    func row(image: Int, region: Int) -> Int { firstRow[image] + region }

    /// The `[regionCount, images · patchesPerImage]` matrix whose product with the patch tokens
    /// gives each region's mean token.
    func pooling(patchesPerImage: Int) -> Tensor {
        RegionPooling(regions: labels.map { $0.map { Optional($0) } }, patchesPerImage: patchesPerImage).matrix
    }
}

/// Mean pooling of patch tokens over regions: a constant matrix, so that the pooled tokens'
/// gradient flows back through an ordinary product.
struct RegionPooling {
    /// The pooled rows, in order: which image and which of its regions.
    let rows: [(image: Int, region: Int)]
    /// `[rows.count, images · patchesPerImage]`: each row averages the patches of its region.
    let matrix: Tensor

    /// Pools over `regions[image][patch]` (a patch with `nil` belongs to no region).
    init(regions: [[Int?]], patchesPerImage: Int) {
        var rows: [(image: Int, region: Int)] = []
        var members: [[Int]] = []
        for (image, labels) in regions.enumerated() {
            var patchesOfRegion: [Int: [Int]] = [:]
            for (patch, label) in labels.enumerated() {
                if let label { patchesOfRegion[label, default: []].append(image * patchesPerImage + patch) }
            }
            for region in patchesOfRegion.keys.sorted() {
                rows.append((image, region))
                members.append(patchesOfRegion[region]!)
            }
        }
        let columns = regions.count * patchesPerImage
        var weights = [Float](repeating: 0, count: rows.count * columns)
        for (row, patches) in members.enumerated() {
            for patch in patches { weights[row * columns + patch] = 1 / Float(patches.count) }
        }
        self.rows = rows
        matrix = Tensor(shape: [rows.count, columns], elements: weights)
    }
}
