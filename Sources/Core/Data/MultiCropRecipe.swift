/// The crops made of every image: groups of views, each group a recipe and a count, in the
/// order the model receives them (DINO: global 1, global 2, then the locals).
public struct MultiCropRecipe: Sendable, Equatable {
    /// A recipe used for `count` consecutive crops.
    public struct Group: Sendable, Equatable {
        public var recipe: ViewRecipe
        public var count: Int

        public init(_ recipe: ViewRecipe, count: Int = 1) {
            precondition(count > 0, "A crop group needs at least one crop, got \(count).")
            self.recipe = recipe
            self.count = count
        }
    }

    /// The groups, in order.
    public var groups: [Group]

    /// A recipe made of `groups`, in order.
    public init(_ groups: [Group]) {
        precondition(!groups.isEmpty, "A multi-crop recipe needs at least one crop.")
        self.groups = groups
    }

    /// One recipe per crop, groups expanded, in order.
    public var views: [ViewRecipe] { groups.flatMap { Array(repeating: $0.recipe, count: $0.count) } }

    /// DINO (`DataAugmentationDINO` in `main_dino.py`): two bicubic global crops of scale 0.4…1 (blur p 1.0;
    /// blur p 0.1 and solarize p 0.2) and `localCount` local crops of scale 0.05…0.4 (blur p 0.5).
    public static func dino(
        globalSize: Int = 224, localSize: Int = 96, localCount: Int = 8,
        globalScale: ClosedRange<Double> = 0.4...1, localScale: ClosedRange<Double> = 0.05...0.4
    ) -> MultiCropRecipe {
        var groups = [
            Group(ViewRecipe(cropSize: globalSize, scale: globalScale, blurProbability: 1)),
            Group(ViewRecipe(cropSize: globalSize, scale: globalScale, blurProbability: 0.1, solarizeProbability: 0.2)),
        ]
        if localCount > 0 {
            groups.append(Group(ViewRecipe(cropSize: localSize, scale: localScale, blurProbability: 0.5), count: localCount))
        }
        return MultiCropRecipe(groups)
    }

    /// SelfPatch (alinlab/SelfPatch `main_selfpatch.py`): DINO's views with global scale 0.25…1 and local
    /// scale 0.05…0.25; SelfPatch needs at least one local crop.
    public static func selfPatch(globalSize: Int = 224, localSize: Int = 96, localCount: Int = 8) -> MultiCropRecipe {
        precondition(localCount > 0, "SelfPatch needs at least one local crop.")
        return dino(
            globalSize: globalSize, localSize: localSize, localCount: localCount, globalScale: 0.25...1,
            localScale: 0.05...0.25)
    }

    /// MoCo v3 (`augmentation1` / `augmentation2` in moco-v3 `main_moco.py`): two bilinear crops of scale `minimumScale`…1, the
    /// flip last; view 1 blur p 1.0, view 2 blur p 0.1 and solarize p 0.2.
    public static func mocoV3(size: Int = 224, minimumScale: Double = 0.08) -> MultiCropRecipe {
        func view(blur: Double, solarize: Double) -> Group {
            var recipe = ViewRecipe(
                cropSize: size, scale: minimumScale...1, interpolation: .bilinear, blurProbability: blur,
                solarizeProbability: solarize)
            recipe.flipLast = true
            return Group(recipe)
        }
        return MultiCropRecipe([view(blur: 1, solarize: 0), view(blur: 0.1, solarize: 0.2)])
    }

    /// SelfPatch scaled down for 28×28 or 32×32 data: 32×32 globals and 16×16 locals.
    public static func smallSelfPatch(localCount: Int = 4) -> MultiCropRecipe {
        selfPatch(globalSize: 32, localSize: 16, localCount: localCount)
    }
}
