/// A module whose output is its input passed through each layer in turn.
///
/// Layers are numbered from 0 in order, activations included, as PyTorch's `nn.Sequential`
/// numbers them, so the parameters of `Sequential([.linear(a), .batchNorm(b), .relu,
/// .linear(c)])` are named `0.weight`, `1.weight`, `1.bias`, `3.weight`, … — the state-dict
/// keys of the same PyTorch module — with no index written by hand.
public final class Sequential: Module {
    /// One step of a ``Sequential``.
    public enum Layer {
        case linear(Linear)
        case batchNorm(BatchNorm1d)
        case layerNorm(LayerNorm)
        /// An activation: it has no parameters but takes its place in the numbering.
        case relu
        case gelu

        fileprivate var module: Module? {
            switch self {
            case .linear(let module): module
            case .batchNorm(let module): module
            case .layerNorm(let module): module
            case .relu, .gelu: nil
            }
        }

        fileprivate func callAsFunction(_ x: Tensor) -> Tensor {
            switch self {
            case .linear(let module): module(x)
            case .batchNorm(let module): module(x)
            case .layerNorm(let module): module(x)
            case .relu: x.relu()
            case .gelu: x.gelu()
            }
        }
    }

    /// The layers, in order.
    public let layers: [Layer]

    public init(_ layers: [Layer]) {
        self.layers = layers
    }

    public override var submodules: [(name: String, module: Module)] {
        layers.enumerated().compactMap { index, layer in layer.module.map { ("\(index)", $0) } }
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        layers.reduce(x) { hidden, layer in layer(hidden) }
    }
}
