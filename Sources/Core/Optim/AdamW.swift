import CKernels
#if canImport(Glibc)
import Glibc
#endif

/// A set of parameters that share optimisation hyper-parameters.
public struct ParameterGroup {
    /// The parameters, by state-dict key.
    public var parameters: [(name: String, tensor: Tensor)]
    /// Multiplies the optimizer's weight decay for this group (0 turns decay off).
    public var weightDecayMultiplier: Double
    /// Multiplies the optimizer's learning rate for this group.
    public var learningRateMultiplier: Double

    public init(
        parameters: [(name: String, tensor: Tensor)], weightDecayMultiplier: Double = 1,
        learningRateMultiplier: Double = 1
    ) {
        self.parameters = parameters
        self.weightDecayMultiplier = weightDecayMultiplier
        self.learningRateMultiplier = learningRateMultiplier
    }

    /// DINO's split: parameters whose name ends in `.bias` or that are 1-D are not decayed;
    /// everything else (including `cls_token` and `pos_embed`) is. Frozen parameters are left
    /// out.
    public static func dinoGroups(_ parameters: [(name: String, tensor: Tensor)]) -> [ParameterGroup] {
        let trainable = parameters.filter { $0.tensor.requiresGradient }
        let isExempt = { (entry: (name: String, tensor: Tensor)) in
            entry.name.hasSuffix(".bias") || entry.tensor.rank == 1
        }
        return [
            ParameterGroup(parameters: trainable.filter { !isExempt($0) }),
            ParameterGroup(parameters: trainable.filter(isExempt), weightDecayMultiplier: 0),
        ]
    }

    /// `groups` split by backbone layer, each part's learning rate multiplied by
    /// `decay^(depth + 1 − layer)`: layer 0 is the patch embedding (with its stem), the position
    /// table and the class token (`backbone.patch_embed.*`, `backbone.pos_embed`,
    /// `backbone.cls_token`), layer `i + 1` is `backbone.blocks.i.*`, and everything else (the
    /// final norm, the heads) is layer `depth + 1`, at the full rate. The layer ids of MAE's
    /// `get_layer_id_for_vit` (`util/lr_decay.py`). Empty parts are dropped.
    public static func layerDecayed(_ groups: [ParameterGroup], decay: Double, depth: Int) -> [ParameterGroup] {
        groups.flatMap { group in
            Dictionary(grouping: group.parameters) { layer(of: $0.name, depth: depth) }
                .sorted { $0.key < $1.key }
                .map { layer, parameters in
                    ParameterGroup(
                        parameters: parameters, weightDecayMultiplier: group.weightDecayMultiplier,
                        learningRateMultiplier: group.learningRateMultiplier * pow(decay, Double(depth + 1 - layer)))
                }
        }
    }

    /// The layer of the student parameter `name` for ``layerDecayed(_:decay:depth:)``.
    static func layer(of name: String, depth: Int) -> Int {
        let prefix = "backbone."
        guard name.hasPrefix(prefix) else { return depth + 1 }
        let key = name.dropFirst(prefix.count)
        if let block = VisionTransformer.blockIndex(of: key) { return min(block + 1, depth + 1) }
        return ["patch_embed.", "pos_embed", "cls_token"].contains(where: key.hasPrefix) ? 0 : depth + 1
    }
}

/// Adam with decoupled weight decay (Loshchilov & Hutter), as `torch.optim.AdamW`:
/// `p ← p·(1 − lr·wd)`, then the bias-corrected Adam update.
///
/// A parameter whose ``Tensor/gradient`` is `nil` is skipped entirely: no decay, no moment
/// update, no step count — which is how DINO freezes its last layer during the first epoch.
public final class AdamW {
    public var groups: [ParameterGroup]
    public var learningRate: Double
    public var weightDecay: Double
    public let beta1: Double
    public let beta2: Double
    public let epsilon: Double
    /// Per-parameter state, by name.
    public private(set) var state: [String: State] = [:]

    /// The moments and step count of one parameter.
    public struct State {
        public var step: Int
        public var firstMoment: Tensor
        public var secondMoment: Tensor
    }

    public init(
        groups: [ParameterGroup], learningRate: Double, weightDecay: Double = 0.04,
        beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8
    ) {
        let names = groups.flatMap { $0.parameters.map(\.name) }
        precondition(Set(names).count == names.count, "AdamW: a parameter appears in two groups.")
        self.groups = groups
        self.learningRate = learningRate
        self.weightDecay = weightDecay
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
    }

    /// Applies one update to every parameter that has a gradient.
    public func step() {
        for group in groups {
            let lr = learningRate * group.learningRateMultiplier
            let decay = weightDecay * group.weightDecayMultiplier
            for (name, parameter) in group.parameters {
                guard let gradient = parameter.gradient else { continue }
                precondition(
                    gradient.shape == parameter.shape,
                    "AdamW: gradient \(gradient.shape) does not match parameter '\(name)' \(parameter.shape).")
                var entry = state[name] ?? State(
                    step: 0, firstMoment: Tensor.zeros(parameter.shape), secondMoment: Tensor.zeros(parameter.shape))
                entry.step += 1
                update(parameter, gradient: gradient, state: entry, learningRate: lr, weightDecay: decay)
                state[name] = entry
            }
        }
    }

    /// Replaces the state of `name` (when restoring a checkpoint).
    public func setState(_ entry: State, for name: String) { state[name] = entry }

    private func update(_ parameter: Tensor, gradient: Tensor, state: State, learningRate lr: Double, weightDecay: Double) {
        // Mirrors PyTorch's single-tensor AdamW in float32, with scalar factors in double.
        let decayFactor = Float(1 - lr * weightDecay)
        let b2 = Float(beta2), oneMinusBeta1 = Float(1 - beta1), oneMinusBeta2 = Float(1 - beta2)
        let biasCorrection1 = 1 - pow(beta1, Double(state.step))
        let biasCorrection2 = 1 - pow(beta2, Double(state.step))
        let stepSize = Float(lr / biasCorrection1)
        let correction2Root = Float(biasCorrection2.squareRoot())
        let eps = Float(epsilon)
        let p = parameter.storage.base, g = gradient.storage.base
        let m = state.firstMoment.storage.base, v = state.secondMoment.storage.base
        let pointers = UncheckedSendable((p, g, m, v))
        Parallel.forEachChunk(of: parameter.count, minimumChunk: 1 << 17) { _, range in
            let (p, g, m, v) = pointers.value
            ssl_adamw_update(
                p + range.lowerBound, g + range.lowerBound, m + range.lowerBound, v + range.lowerBound, Int64(range.count),
                decayFactor, oneMinusBeta1, b2, oneMinusBeta2, correction2Root, eps, stepSize)
        }
    }
}
