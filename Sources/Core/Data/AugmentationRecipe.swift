import Foundation

/// How a run's crops are made: the reference augmentation they follow and the scale ranges of
/// the global and local crops; the counts and sizes of the crops come from the run's
/// ``ViewPlan``.
///
/// A task declares the augmentation its method trains with (``PretextTask/augmentation``), and
/// ``TaskRegistry/augmentation(agreedBy:)`` combines the wishes of a run's tasks.
public struct AugmentationRecipe: Codable, Sendable, Equatable {
    /// The reference augmentation.
    public enum Family: String, Codable, Sendable, CaseIterable {
        /// DINO's multi-crop (`DataAugmentationDINO` in `main_dino.py`): bicubic crops, flipped
        /// right after cropping; the first global crop blurred with p 1, the second with p 0.1
        /// and solarised with p 0.2, further global crops like the first; local crops blurred
        /// with p 0.5.
        case multiCrop = "multi-crop"
        /// Two symmetric views (`augmentation1` / `augmentation2` in moco-v3 `main_moco.py`):
        /// bilinear crops, flipped last; the first view blurred with p 1, the second with p 0.1
        /// and solarised with p 0.2; local crops, if any, like the first view.
        case twoView = "two-view"
    }

    public var family: Family
    /// The share of the image area a global crop covers, drawn uniformly from this range.
    public var globalScale: ClosedRange<Double>
    /// The share of the image area a local crop covers.
    public var localScale: ClosedRange<Double>
    /// The colour jitter's largest hue rotation, in turns (0…0.5): the references' 0.1, or up to
    /// 0.5 (any hue) for images whose colours say nothing about their content. Grey images are
    /// unchanged by it.
    public var hue: Double
    /// The probability that a crop's dark background is redrawn (``RandomBackground``): 0 in the
    /// references; for images of light content on black, such as Fashion-MNIST, it keeps the
    /// background from telling views apart.
    public var background: Double
    /// The probability that a local crop is pasted among distractor garments on a scene-like
    /// canvas (``RandomPaste``, after CP² and InsLoc): 0 in the references; stored only when
    /// positive, so that recipes without it are written as before.
    public var paste: Double

    public init(
        family: Family = .multiCrop, globalScale: ClosedRange<Double> = 0.4...1, localScale: ClosedRange<Double> = 0.05...0.4,
        hue: Double = Self.referenceHue, background: Double = 0, paste: Double = 0
    ) {
        self.family = family
        self.globalScale = globalScale
        self.localScale = localScale
        self.hue = hue
        self.background = background
        self.paste = paste
    }

    private enum CodingKeys: String, CodingKey {
        case family, globalScale, localScale, hue, background, paste
    }

    /// Decodes a recipe; one written before the hue, the background or the paste was stored has
    /// the references' values.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        family = try container.decode(Family.self, forKey: .family)
        globalScale = try container.decode(ClosedRange<Double>.self, forKey: .globalScale)
        localScale = try container.decode(ClosedRange<Double>.self, forKey: .localScale)
        hue = try container.decodeIfPresent(Double.self, forKey: .hue) ?? Self.referenceHue
        guard Self.hueRange.contains(hue) else {
            throw DecodingError.dataCorruptedError(
                forKey: .hue, in: container, debugDescription: "The augmentation's hue must be in 0…0.5 (turns), got \(hue).")
        }
        background = try container.decodeIfPresent(Double.self, forKey: .background) ?? 0
        guard (0...1).contains(background) else {
            throw DecodingError.dataCorruptedError(
                forKey: .background, in: container,
                debugDescription: "The augmentation's background probability must be in 0…1, got \(background).")
        }
        paste = try container.decodeIfPresent(Double.self, forKey: .paste) ?? 0
        guard (0...1).contains(paste) else {
            throw DecodingError.dataCorruptedError(
                forKey: .paste, in: container, debugDescription: "The augmentation's paste probability must be in 0…1, got \(paste).")
        }
    }

    /// Encodes the recipe, the paste probability only when it is positive.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(family, forKey: .family)
        try container.encode(globalScale, forKey: .globalScale)
        try container.encode(localScale, forKey: .localScale)
        try container.encode(hue, forKey: .hue)
        try container.encode(background, forKey: .background)
        if paste != 0 { try container.encode(paste, forKey: .paste) }
    }

    /// DINO's multi-crop with its scales (global 0.4…1, local 0.05…0.4): the augmentation of a
    /// run whose tasks declare none.
    public static let multiCrop = AugmentationRecipe()

    /// Two symmetric views with the reference scales (0.08…1).
    public static let twoView = AugmentationRecipe(family: .twoView, globalScale: 0.08...1, localScale: 0.08...1)

    /// `family` with its reference scales.
    public static func standard(_ family: Family) -> AugmentationRecipe {
        family == .multiCrop ? .multiCrop : .twoView
    }

    /// The crops of `plan`: global crops first, then the local crops.
    ///
    /// The references blur with a standard deviation of 0.1–2 pixels at their 224-pixel global
    /// crops; the range scales with the global crop size, so that a 28-pixel crop is blurred
    /// as much relative to its size (0.0125–0.25 pixels) and 224-pixel runs are unchanged.
    public func crops(for plan: ViewPlan) -> MultiCropRecipe {
        let reference: [ViewRecipe]
        switch family {
        case .multiCrop:
            reference = MultiCropRecipe.dino(
                globalSize: plan.globalSize, localSize: plan.localCount > 0 ? plan.localSize : plan.globalSize,
                localCount: 1, globalScale: globalScale, localScale: localScale
            ).views
        case .twoView:
            reference = MultiCropRecipe.twoView(size: plan.globalSize, scale: globalScale).views
        }
        var groups = (0..<plan.globalCount).map { index in MultiCropRecipe.Group(reference[index == 1 ? 1 : 0]) }
        if plan.localCount > 0 {
            var local = reference.count > 2 ? reference[2] : reference[0]
            local.cropSize = plan.localSize
            local.scale = localScale
            local.pasteProbability = paste
            groups.append(MultiCropRecipe.Group(local, count: plan.localCount))
        }
        let resolution = Double(plan.globalSize) / Self.referenceGlobalSize
        for index in groups.indices {
            let radius = groups[index].recipe.blurRadius
            groups[index].recipe.blurRadius = (radius.lowerBound * resolution)...(radius.upperBound * resolution)
            groups[index].recipe.hue = hue
            groups[index].recipe.backgroundProbability = background
        }
        return MultiCropRecipe(groups)
    }

    /// The family and scales in one line, e.g. `multi-crop, global scale 0.4…1, local scale 0.05…0.4`,
    /// and the hue, background and paste when they are not the references'.
    public var summary: String {
        func range(_ scale: ClosedRange<Double>) -> String {
            String(format: "%g…%g", scale.lowerBound, scale.upperBound)
        }
        let hueText = hue == Self.referenceHue ? "" : String(format: ", hue %g", hue)
        let backgroundText = background == 0 ? "" : String(format: ", backgrounds redrawn with p %g", background)
        let pasteText = paste == 0 ? "" : String(format: ", local crops pasted among distractors with p %g", paste)
        return "\(family.rawValue), global scale \(range(globalScale)), local scale \(range(localScale))"
            + "\(hueText)\(backgroundText)\(pasteText)"
    }

    /// The global crop size the reference recipes were tuned at.
    static let referenceGlobalSize = 224.0

    /// The hue strength of DINO's and MoCo v3's colour jitter (`ColorJitter(0.4, 0.4, 0.2, 0.1)`).
    public static let referenceHue = 0.1

    /// The hue strengths torchvision's `ColorJitter` accepts, in turns (0.5: any hue).
    public static let hueRange = 0.0...0.5
}
