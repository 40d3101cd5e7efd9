#if canImport(Glibc)
import Glibc
#endif

/// The architecture of a ``VisionTransformer``.
public struct VisionTransformerConfiguration: Codable, Sendable, Equatable {
    /// How patch positions are encoded.
    public enum PositionEmbedding: String, Codable, Sendable {
        /// A learned table (DINO, SelfPatch).
        case learned
        /// A fixed 2-D sine-cosine table (MoCo v3); not trained.
        case sineCosine
    }

    /// How the parameters are initialised.
    public enum Initialization: String, Codable, Sendable {
        /// DINO's (timm's `_init_weights`): truncated-normal (std 0.02) linear weights, class
        /// token and learned position table, zero linear biases, PyTorch's default `Conv2d`
        /// initialisation for the patch projection.
        case dino
        /// MoCo v3's `VisionTransformerMoCo` (facebookresearch/moco-v3 `vits.py`): linear weights
        /// Xavier-uniform, the fused `qkv` weight uniform in ±√(6 / (D + D)) as three separate
        /// `[D, D]` matrices, zero biases, class token N(0, 10⁻¹²), patch projection uniform in
        /// ±√(6 / (3·p² + D)) with zero bias. (MoCo v3 also fixes the sine-cosine table and
        /// freezes the patch projection: ``positionEmbedding`` and ``freezePatchProjection``.)
        case mocoV3 = "mocov3"
    }

    public var embedDimension: Int
    public var depth: Int
    public var heads: Int
    public var mlpRatio: Int = 4
    public var patchSize: Int
    /// The image side the position table is laid out for; other crop sizes interpolate it.
    public var imageSize: Int
    public var classToken: Bool = true
    public var finalNorm: Bool = true
    public var positionEmbedding: PositionEmbedding = .learned
    /// Keep the patch projection at its initial values (MoCo v3's "random patch projection").
    public var freezePatchProjection: Bool = false
    /// The stochastic-depth rate of the last block (rates rise linearly from 0 at block 0).
    public var dropPathRate: Float = 0
    public var layerNormEpsilon: Float = 1e-6
    public var initialization: Initialization = .dino
    /// The widths of a convolutional stem before the patch projection, one 3 × 3 convolution
    /// (stride 1, padding 1) followed by GELU per entry; empty (the default, as in DINO) for
    /// none. The stem gives each patch token local features of its pixels' neighbourhoods, the
    /// early convolutions of Xiao et al. (2021) at full resolution.
    public var stemChannels: [Int] = []

    public init(
        embedDimension: Int, depth: Int, heads: Int, patchSize: Int, imageSize: Int,
        classToken: Bool = true, finalNorm: Bool = true, positionEmbedding: PositionEmbedding = .learned,
        freezePatchProjection: Bool = false, dropPathRate: Float = 0
    ) {
        self.embedDimension = embedDimension
        self.depth = depth
        self.heads = heads
        self.patchSize = patchSize
        self.imageSize = imageSize
        self.classToken = classToken
        self.finalNorm = finalNorm
        self.positionEmbedding = positionEmbedding
        self.freezePatchProjection = freezePatchProjection
        self.dropPathRate = dropPathRate
    }

    /// ViT-Tiny: 192 wide, 12 blocks, 3 heads.
    public static func tiny(patchSize: Int = 16, imageSize: Int = 224) -> Self {
        Self(embedDimension: 192, depth: 12, heads: 3, patchSize: patchSize, imageSize: imageSize)
    }

    /// ViT-Small: 384 wide, 12 blocks, 6 heads.
    public static func small(patchSize: Int = 16, imageSize: Int = 224) -> Self {
        Self(embedDimension: 384, depth: 12, heads: 6, patchSize: patchSize, imageSize: imageSize)
    }

    /// ViT-Base: 768 wide, 12 blocks, 12 heads.
    public static func base(patchSize: Int = 16, imageSize: Int = 224) -> Self {
        Self(embedDimension: 768, depth: 12, heads: 12, patchSize: patchSize, imageSize: imageSize)
    }

    /// The side of the reference patch grid.
    public var referenceGridSize: Int { imageSize / patchSize }

    enum CodingKeys: String, CodingKey {
        case embedDimension, depth, heads, mlpRatio, patchSize, imageSize, classToken, finalNorm, positionEmbedding
        case freezePatchProjection, dropPathRate, layerNormEpsilon, initialization, stemChannels
    }
}

extension VisionTransformerConfiguration {
    /// Decodes a configuration; `initialization` and `stemChannels` may be absent (configurations
    /// and checkpoints written before they existed), meaning ``Initialization/dino`` and no stem.
    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        embedDimension = try container.decode(Int.self, forKey: .embedDimension)
        depth = try container.decode(Int.self, forKey: .depth)
        heads = try container.decode(Int.self, forKey: .heads)
        mlpRatio = try container.decode(Int.self, forKey: .mlpRatio)
        patchSize = try container.decode(Int.self, forKey: .patchSize)
        imageSize = try container.decode(Int.self, forKey: .imageSize)
        classToken = try container.decode(Bool.self, forKey: .classToken)
        finalNorm = try container.decode(Bool.self, forKey: .finalNorm)
        positionEmbedding = try container.decode(PositionEmbedding.self, forKey: .positionEmbedding)
        freezePatchProjection = try container.decode(Bool.self, forKey: .freezePatchProjection)
        dropPathRate = try container.decode(Float.self, forKey: .dropPathRate)
        layerNormEpsilon = try container.decode(Float.self, forKey: .layerNormEpsilon)
        initialization = try container.decodeIfPresent(Initialization.self, forKey: .initialization) ?? .dino
        stemChannels = try container.decodeIfPresent([Int].self, forKey: .stemChannels) ?? []
        guard stemChannels.allSatisfy({ $0 > 0 }) else {
            throw DecodingError.dataCorruptedError(
                forKey: .stemChannels, in: container,
                debugDescription: "The stem's channel counts must be positive, got \(stemChannels).")
        }
    }
}

extension VisionTransformer {
    /// The block holding the backbone parameter `key` (`blocks.3.attn.qkv.weight` → 3), or
    /// `nil` for a parameter outside the blocks.
    public static func blockIndex(of key: some StringProtocol) -> Int? {
        let prefix = "blocks."
        guard key.hasPrefix(prefix) else { return nil }
        return Int(key.dropFirst(prefix.count).prefix { $0 != "." })
    }
}

/// The patch embedding: a convolution with kernel = stride = patch size, as patches + one GEMM,
/// after an optional convolutional stem.
public final class PatchEmbed: Module {
    /// The stem's convolutions, each followed by GELU (PyTorch: `stem = nn.Sequential(conv,
    /// GELU, conv, GELU, …)`, so the convolutions are `stem.0`, `stem.2`, …).
    public let stem: [Convolution3x3]
    /// The projection, with PyTorch's `Conv2d` weight layout `[dim, channels, patch, patch]`.
    public let weight: Tensor
    public let bias: Tensor
    public let patchSize: Int

    public init(
        patchSize: Int, channels: Int = 3, stemChannels: [Int] = [], features: Int, generator: inout RandomGenerator
    ) {
        self.patchSize = patchSize
        var stem = [Convolution3x3]()
        var inputChannels = channels
        for outputChannels in stemChannels {
            stem.append(Convolution3x3(inputChannels: inputChannels, outputChannels: outputChannels, generator: &generator))
            inputChannels = outputChannels
        }
        self.stem = stem
        let fanIn = inputChannels * patchSize * patchSize
        let bound = 1 / Float(fanIn).squareRoot()
        weight = Tensor.randomUniform(
            [features, inputChannels, patchSize, patchSize], lower: -bound, upper: bound, generator: &generator)
        bias = Tensor.randomUniform([features], lower: -bound, upper: bound, generator: &generator)
        weight.requiresGradient = true
        bias.requiresGradient = true
    }

    public override var ownParameters: [(name: String, tensor: Tensor)] {
        [("proj.weight", weight), ("proj.bias", bias)]
    }

    public override var submodules: [(name: String, module: Module)] {
        stem.enumerated().map { ("stem.\(2 * $0.offset)", $0.element as Module) }
    }

    /// Embeds `[batch, channels, height, width]` images as `[batch, patches, features]`.
    public func callAsFunction(_ images: Tensor) -> Tensor {
        let features = weight.shape[0]
        let stemmed = stem.reduce(images) { $1.geluConvolution($0) }
        return stemmed.patches(size: patchSize).linear(weight: weight.reshaped([features, -1]), bias: bias)
    }
}

/// A Vision Transformer backbone in DINO's layout (and, by configuration, SelfPatch's and
/// MoCo v3's), with parameter names equal to the PyTorch state-dict keys.
public final class VisionTransformer: Module {
    public let configuration: VisionTransformerConfiguration
    public let patchEmbed: PatchEmbed
    public let classToken: Tensor?
    /// `[1, classSlots + gridSize², dim]`.
    public let positionTable: Tensor
    public let blocks: [Block]
    public let norm: LayerNorm?
    /// The stream used by stochastic depth.
    public var generator: RandomGenerator
    private var resamplingMatrices: [GridSize: Tensor] = [:]

    private struct GridSize: Hashable { var height: Int, width: Int }

    public init(_ configuration: VisionTransformerConfiguration, seed: UInt64 = 0) {
        let c = configuration
        precondition(
            c.imageSize % c.patchSize == 0,
            "VisionTransformer: image size \(c.imageSize) must be a multiple of patch size \(c.patchSize).")
        self.configuration = c
        var generator = RandomGenerator(seed: seed)
        let slots = c.classToken ? 1 : 0
        let grid = c.referenceGridSize
        switch c.positionEmbedding {
        case .learned:
            positionTable = Tensor.truncatedNormal(
                [1, slots + grid * grid, c.embedDimension], standardDeviation: 0.02, generator: &generator)
            positionTable.requiresGradient = true
        case .sineCosine:
            positionTable = Self.sineCosineTable(grid: grid, dimension: c.embedDimension, classSlots: slots)
        }
        patchEmbed = PatchEmbed(
            patchSize: c.patchSize, stemChannels: c.stemChannels, features: c.embedDimension, generator: &generator)
        if c.freezePatchProjection {
            patchEmbed.weight.requiresGradient = false
            patchEmbed.bias.requiresGradient = false
        }
        if c.classToken {
            let token = Tensor.truncatedNormal([1, 1, c.embedDimension], standardDeviation: 0.02, generator: &generator)
            token.requiresGradient = true
            classToken = token
        } else {
            classToken = nil
        }
        blocks = (0..<c.depth).map { index in
            let rate = c.depth > 1 ? c.dropPathRate * Float(index) / Float(c.depth - 1) : 0
            return Block(
                features: c.embedDimension, heads: c.heads, mlpRatio: c.mlpRatio, dropPathRate: rate,
                layerNormEpsilon: c.layerNormEpsilon, generator: &generator)
        }
        norm = c.finalNorm ? LayerNorm(features: c.embedDimension, epsilon: c.layerNormEpsilon) : nil
        self.generator = RandomGenerator(seed: seed, path: [RandomGenerator.Stream.stochasticDepth])
        super.init()
        if c.initialization == .mocoV3 { initializeAsMoCoV3(generator: &generator) }
    }

    /// Redraws the parameters as `VisionTransformerMoCo.__init__` does (facebookresearch/moco-v3
    /// `vits.py`; see ``VisionTransformerConfiguration/Initialization/mocoV3``). Linear biases
    /// are already zero, and layer norms and position tables are as in DINO.
    private func initializeAsMoCoV3(generator: inout RandomGenerator) {
        func drawUniform(_ tensor: Tensor, bound: Double) {
            tensor.assign(Tensor.randomUniform(tensor.shape, lower: -Float(bound), upper: Float(bound), generator: &generator))
        }
        func drawXavierUniform(_ weight: Tensor) {
            drawUniform(weight, bound: (6 / Double(weight.shape[0] + weight.shape[1])).squareRoot())
        }
        for block in blocks {
            // q, k and v are treated as three [D, D] matrices.
            let qkv = block.attn.qkv.weight
            drawUniform(qkv, bound: (6 / Double(qkv.shape[0] / 3 + qkv.shape[1])).squareRoot())
            drawXavierUniform(block.attn.proj.weight)
            drawXavierUniform(block.mlp.fc1.weight)
            drawXavierUniform(block.mlp.fc2.weight)
        }
        if let classToken {
            classToken.assign(Tensor.randomNormal(classToken.shape, standardDeviation: 1e-6, generator: &generator))
        }
        let patchInputs = patchEmbed.weight.count / configuration.embedDimension
        drawUniform(patchEmbed.weight, bound: (6 / Double(patchInputs + configuration.embedDimension)).squareRoot())
        patchEmbed.bias.assign(Tensor.zeros(patchEmbed.bias.shape))
    }

    public override var ownParameters: [(name: String, tensor: Tensor)] {
        (classToken.map { [("cls_token", $0)] } ?? []) + [("pos_embed", positionTable)]
    }

    public override var submodules: [(name: String, module: Module)] {
        [("patch_embed", patchEmbed as Module)]
            + blocks.enumerated().map { ("blocks.\($0.offset)", $0.element as Module) }
            + (norm.map { [("norm", $0 as Module)] } ?? [])
    }

    /// The number of class-token rows at the start of the output (0 or 1).
    public var classSlots: Int { configuration.classToken ? 1 : 0 }

    /// Runs the backbone on `[batch, 3, height, width]` images.
    ///
    /// - Returns: all tokens, `[batch, classSlots + patches, dim]`, after the final norm when the
    ///   configuration has one.
    public func callAsFunction(_ images: Tensor, recorder: ActivationRecorder? = nil) -> Tensor {
        features(images, recorder: recorder).output
    }

    /// Runs the backbone and returns both the last block's raw tokens and the normed output.
    ///
    /// - Parameter masking: for masked image modelling (iBOT), the patches to hide,
    ///   `[batch, patches, 1]` with 1 for a hidden patch and 0 otherwise, and the `[1, 1, dim]`
    ///   token whose embedding replaces theirs before the class token and the position table
    ///   are added (`mask_model` in bytedance/ibot `models/vision_transformer.py`).
    public func features(
        _ images: Tensor, masking: (patches: Tensor, token: Tensor)? = nil, recorder: ActivationRecorder? = nil
    ) -> BackboneFeatures {
        let c = configuration
        precondition(
            images.rank == 4 && images.shape[1] == 3 && images.shape[2] % c.patchSize == 0
                && images.shape[3] % c.patchSize == 0,
            "VisionTransformer: images \(images.describe) must be [batch, 3, height, width] with sides "
                + "that are multiples of the patch size \(c.patchSize).")
        let batch = images.shape[0]
        let grid = GridSize(height: images.shape[2] / c.patchSize, width: images.shape[3] / c.patchSize)
        var embedded = patchEmbed(images)
        if let masking {
            precondition(
                masking.patches.shape == [batch, grid.height * grid.width, 1],
                "VisionTransformer: a patch mask must be [\(batch), \(grid.height * grid.width), 1], got \(masking.patches.describe).")
            embedded = embedded * (1 - masking.patches) + masking.patches * masking.token
        }
        recorder?.record("patch_embed", embedded)
        var tokens = embedded
        if let classToken {
            let expanded = classToken + Tensor.zeros([batch, 1, c.embedDimension])
            tokens = Tensor.concatenate([expanded, embedded], axis: 1)
        }
        let positions = positionEmbedding(for: grid)
        recorder?.record("pos_embed", positions)
        tokens = tokens + positions
        recorder?.record("tokens", tokens)
        for (index, block) in blocks.enumerated() {
            tokens = block(tokens, generator: &generator, recorder: recorder?.scoped("blocks.\(index)"))
        }
        let result = features(lastBlock: tokens, gridHeight: grid.height, gridWidth: grid.width)
        if norm != nil { recorder?.record("norm", result.output) }
        return result
    }

    /// The features of a pass whose last block produced `lastBlock`
    /// (`[batch, classSlots + gridHeight·gridWidth, dim]`): the final norm, when the configuration
    /// has one, applied on top. Training uses it to continue from a cut in the graph.
    public func features(lastBlock: Tensor, gridHeight: Int, gridWidth: Int) -> BackboneFeatures {
        BackboneFeatures(
            lastBlock: lastBlock, output: norm.map { $0(lastBlock) } ?? lastBlock, classSlots: classSlots,
            gridHeight: gridHeight, gridWidth: gridWidth)
    }

    /// The position table for a patch grid, interpolated bicubically from the reference grid as
    /// DINO does when the grid differs (scale factor `(n + 0.1)/reference`).
    public func positionEmbedding(height: Int, width: Int) -> Tensor {
        positionEmbedding(for: GridSize(height: height, width: width))
    }

    private func positionEmbedding(for grid: GridSize) -> Tensor {
        let reference = configuration.referenceGridSize
        if grid.height == reference && grid.width == reference { return positionTable }
        let matrix: Tensor
        if let cached = resamplingMatrices[grid] {
            matrix = cached
        } else {
            matrix = BicubicResampling.gridMatrix(
                input: (reference, reference), output: (grid.height, grid.width),
                scale: (
                    (Double(grid.height) + 0.1) / Double(reference),
                    (Double(grid.width) + 0.1) / Double(reference)
                ))
            resamplingMatrices[grid] = matrix
        }
        let dimension = configuration.embedDimension
        let slots = classSlots
        let table = positionTable.reshaped([slots + reference * reference, dimension])
        let patchRows = table.sliced(slots..<(slots + reference * reference), axis: 0)
        var rows = matrix.matmul(patchRows)
        if slots > 0 { rows = Tensor.concatenate([table.sliced(0..<slots, axis: 0), rows], axis: 0) }
        return rows.reshaped([1, slots + grid.height * grid.width, dimension])
    }

    /// MoCo v3's fixed table: for the patch at (row r, column c),
    /// `[sin(r·ω), cos(r·ω), sin(c·ω), cos(c·ω)]` with ω_j = 10000^(−j/q), q = dim/4; the class
    /// slot is zero.
    public static func sineCosineTable(grid: Int, dimension: Int, classSlots: Int) -> Tensor {
        precondition(dimension % 4 == 0, "A sine-cosine position table needs a dimension divisible by 4, got \(dimension).")
        let quarter = dimension / 4
        let table = Tensor.zeros([1, classSlots + grid * grid, dimension])
        let t = table.storage.base
        for row in 0..<grid {
            for column in 0..<grid {
                let base = (classSlots + row * grid + column) * dimension
                for j in 0..<quarter {
                    let omega = 1 / pow(10000.0, Double(j) / Double(quarter))
                    t[base + j] = Float(sin(Double(row) * omega))
                    t[base + quarter + j] = Float(cos(Double(row) * omega))
                    t[base + 2 * quarter + j] = Float(sin(Double(column) * omega))
                    t[base + 3 * quarter + j] = Float(cos(Double(column) * omega))
                }
            }
        }
        return table
    }
}
