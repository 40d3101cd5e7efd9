/// The augmentation family of a run, taken from its first task: each method's paper recipe,
/// with crop counts and sizes from the run's view plan.
public enum AugmentationStyle: String, Codable, Sendable, CaseIterable {
    case dino, selfPatch = "selfpatch", mocoV3 = "mocov3"

    /// The style a task's reference recipe uses (DINO's for tasks it does not know).
    public init(task name: String) {
        switch name {
        case "selfpatch": self = .selfPatch
        case "moco": self = .mocoV3
        default: self = .dino
        }
    }

    /// The multi-crop recipe for `plan`: global crops first (the first with blur p 1, the
    /// second with blur p 0.1 and solarisation p 0.2, further ones like the first), then the
    /// local crops.
    ///
    /// The references blur with a standard deviation of 0.1–2 pixels at their 224-pixel global
    /// crops; the range scales with the global crop size, so that a 28-pixel crop is blurred
    /// as much relative to its size (0.0125–0.25 pixels) and 224-pixel runs are unchanged.
    public func recipe(for plan: ViewPlan) -> MultiCropRecipe {
        let reference: MultiCropRecipe
        let localSize = plan.localCount > 0 ? plan.localSize : plan.globalSize
        switch self {
        case .dino: reference = .dino(globalSize: plan.globalSize, localSize: localSize, localCount: max(plan.localCount, 1))
        case .selfPatch: reference = .selfPatch(globalSize: plan.globalSize, localSize: localSize, localCount: max(plan.localCount, 1))
        case .mocoV3: reference = .mocoV3(size: plan.globalSize)
        }
        let views = reference.views
        var groups = (0..<plan.globalCount).map { index in MultiCropRecipe.Group(views[index == 1 ? 1 : 0]) }
        if plan.localCount > 0 {
            // MoCo's recipe has no local crops: use its first view's augmentation at the local size.
            var local = views.count > 2 ? views[2] : views[0]
            local.cropSize = plan.localSize
            groups.append(MultiCropRecipe.Group(local, count: plan.localCount))
        }
        let resolution = Double(plan.globalSize) / Self.referenceGlobalSize
        for index in groups.indices {
            let radius = groups[index].recipe.blurRadius
            groups[index].recipe.blurRadius = (radius.lowerBound * resolution)...(radius.upperBound * resolution)
        }
        return MultiCropRecipe(groups)
    }

    /// The global crop size the reference recipes were tuned at.
    static let referenceGlobalSize = 224.0
}
