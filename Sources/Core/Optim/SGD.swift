/// Stochastic gradient descent with heavy-ball momentum, as `torch.optim.SGD` (no dampening,
/// no Nesterov, no weight decay):
///
///     buffer ← momentum · buffer + gradient     (buffer = gradient on a parameter's first step)
///     parameter ← parameter − learningRate · buffer
///
/// A parameter whose ``Tensor/gradient`` is `nil` is skipped and its buffer left unchanged.
public final class SGD {
    /// The parameters to update, by name (the key of their momentum buffers).
    public let parameters: [(name: String, tensor: Tensor)]
    /// The step size; change it between steps to follow a schedule.
    public var learningRate: Double
    /// The momentum factor (0 turns momentum off: plain gradient descent).
    public let momentum: Double
    /// The momentum buffer of each parameter that has taken a step, by name.
    public private(set) var momentumBuffers: [String: Tensor] = [:]

    public init(parameters: [(name: String, tensor: Tensor)], learningRate: Double, momentum: Double = 0) {
        let names = parameters.map(\.name)
        precondition(Set(names).count == names.count, "SGD: two parameters share a name.")
        precondition(momentum >= 0, "SGD: momentum must not be negative, got \(momentum).")
        self.parameters = parameters
        self.learningRate = learningRate
        self.momentum = momentum
    }

    /// Applies one update to every parameter that has a gradient.
    public func step() {
        let rate = Float(learningRate), factor = Float(momentum)
        for (name, parameter) in parameters {
            guard let gradient = parameter.gradient else { continue }
            precondition(
                gradient.shape == parameter.shape,
                "SGD: gradient \(gradient.shape) does not match parameter '\(name)' \(parameter.shape).")
            let direction: Tensor
            if momentum == 0 {
                direction = gradient
            } else if let buffer = momentumBuffers[name] {
                let b = buffer.storage.base, g = gradient.storage.base
                for i in 0..<buffer.count { b[i] = factor * b[i] + g[i] }
                direction = buffer
            } else {
                direction = gradient.copy()
                momentumBuffers[name] = direction
            }
            let p = parameter.storage.base, d = direction.storage.base
            for i in 0..<parameter.count { p[i] -= rate * d[i] }
        }
    }
}
