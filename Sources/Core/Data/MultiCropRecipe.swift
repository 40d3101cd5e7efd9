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

    /// Two symmetric views (`augmentation1` / `augmentation2` in moco-v3 `main_moco.py`): two
    /// bilinear crops of `scale`, the flip last; view 1 blur p 1.0, view 2 blur p 0.1 and
    /// solarize p 0.2.
    public static func twoView(size: Int = 224, scale: ClosedRange<Double> = 0.08...1) -> MultiCropRecipe {
        func view(blur: Double, solarize: Double) -> Group {
            var recipe = ViewRecipe(
                cropSize: size, scale: scale, interpolation: .bilinear, blurProbability: blur, solarizeProbability: solarize)
            recipe.flipLast = true
            return Group(recipe)
        }
        return MultiCropRecipe([view(blur: 1, solarize: 0), view(blur: 0.1, solarize: 0.2)])
    }
}
