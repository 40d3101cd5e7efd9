/// How one crop (view) of an image is made: a random resized crop, then flip, a paste among
/// distractors and a redrawn background (both off by default), colour jitter, greyscale, blur and
/// solarisation each with its probability, then normalisation.
///
/// The order is DINO's (crop, flip, jitter, greyscale, blur, solarize); with ``flipLast`` the
/// flip comes after solarisation, as in MoCo v3.
public struct ViewRecipe: Sendable, Equatable {
    /// The side of the crop.
    public var cropSize: Int
    /// The crop's area range, as a fraction of the image.
    public var scale: ClosedRange<Double>
    /// The crop's aspect-ratio range.
    public var ratio: ClosedRange<Double> = 3.0 / 4...4.0 / 3
    /// The resize filter.
    public var interpolation: Interpolation = .bicubic
    /// The probability of a horizontal flip.
    public var flipProbability = 0.5
    /// Whether the flip comes last (MoCo v3) instead of right after the crop (DINO).
    public var flipLast = false
    /// The probability of the colour jitter.
    public var jitterProbability = 0.8
    /// Colour-jitter strengths.
    public var brightness = 0.4, contrast = 0.4, saturation = 0.2, hue = 0.1
    /// The probability of pasting the crop among distractor garments on a scene-like canvas
    /// (``RandomPaste``), right after the crop and DINO's flip; 0, the references' choice, leaves
    /// the step out. The distractors come from the dataset the crops are made of (see
    /// ``augmentations(distractors:)``).
    public var pasteProbability = 0.0
    /// The probability of redrawing a dark background (``RandomBackground``), right after the
    /// crop, DINO's flip and the paste; 0, the references' choice, leaves the step out.
    public var backgroundProbability = 0.0
    /// The probability of converting to greyscale.
    public var greyscaleProbability = 0.2
    /// The probability of a Gaussian blur.
    public var blurProbability: Double
    /// The blur's standard-deviation range, in pixels.
    public var blurRadius: ClosedRange<Double> = 0.1...2.0
    /// The probability of solarising.
    public var solarizeProbability = 0.0
    /// The normalisation applied last.
    public var normalization = ImageNormalization.imageNet

    /// A view with the given crop and blur probability and the DINO defaults for the rest.
    public init(
        cropSize: Int, scale: ClosedRange<Double>, interpolation: Interpolation = .bicubic, blurProbability: Double,
        solarizeProbability: Double = 0
    ) {
        self.cropSize = cropSize
        self.scale = scale
        self.interpolation = interpolation
        self.blurProbability = blurProbability
        self.solarizeProbability = solarizeProbability
    }

    /// The augmentations in the order they run, of a recipe that pastes nothing.
    public var augmentations: [any ImageAugmentation] { augmentations(distractors: nil) }

    /// The augmentations in the order they run; a paste draws its distractors from `distractors`,
    /// which it needs when ``pasteProbability`` is positive.
    public func augmentations(distractors: (any ImageDataset)?) -> [any ImageAugmentation] {
        let flip = RandomHorizontalFlip(probability: flipProbability)
        var steps: [any ImageAugmentation] = [
            RandomResizedCrop(size: cropSize, scale: scale, ratio: ratio, interpolation: interpolation)
        ]
        if !flipLast { steps.append(flip) }
        if pasteProbability > 0 {
            guard let distractors else {
                preconditionFailure("A view pasted with p \(pasteProbability) needs a dataset to draw its distractors from.")
            }
            steps.append(RandomPaste(probability: pasteProbability, distractors: distractors))
        }
        if backgroundProbability > 0 { steps.append(RandomBackground(probability: backgroundProbability)) }
        steps += [
            ColorJitter(
                probability: jitterProbability, brightness: brightness, contrast: contrast, saturation: saturation, hue: hue),
            RandomGrayscale(probability: greyscaleProbability),
            RandomGaussianBlur(probability: blurProbability, radius: blurRadius),
            RandomSolarization(probability: solarizeProbability),
        ]
        if flipLast { steps.append(flip) }
        return steps
    }

    /// A crop of `image` made with the random choices drawn from `generator`, before
    /// normalisation, and the region of `image` it shows; a paste draws its distractors from
    /// `distractors` (see ``augmentations(distractors:)``).
    public func crop(
        _ image: Image, distractors: (any ImageDataset)? = nil, generator: inout RandomGenerator
    ) -> (image: Image, geometry: CropGeometry) {
        var view = image, geometry = CropGeometry.wholeImage
        for step in augmentations(distractors: distractors) { step.apply(to: &view, geometry: &geometry, generator: &generator) }
        return (view, geometry)
    }
}
