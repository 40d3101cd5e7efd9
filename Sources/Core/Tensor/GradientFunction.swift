/// The record of one operation: where its inputs came from and how to turn the gradient of its
/// output into gradients of those inputs.
///
/// The record links to the operations that produced its inputs, not to the input tensors
/// themselves, so an intermediate result stays alive only if a backward body saved it.
final class GradientFunction {
    /// Where one input's gradient goes.
    enum Edge {
        /// The input needs no gradient.
        case none
        /// A leaf (e.g. a parameter): its ``Tensor/gradient`` accumulates.
        case leaf(Tensor)
        /// The result of another recorded operation, with its shape.
        case node(GradientFunction, shape: [Int])
    }

    /// The operation's name, for error messages and debugging.
    let operation: String
    /// One edge per input, in order.
    private(set) var edges: [Edge]
    /// Maps the output gradient to one gradient per input (`nil` where none is needed).
    private var backwardBody: ((Tensor) -> [Tensor?])?

    init(operation: String, inputs: [Tensor], backward: @escaping (Tensor) -> [Tensor?]) {
        self.operation = operation
        self.edges = inputs.map { input in
            guard input.requiresGradient else { return .none }
            if let function = input.gradientFunction { return .node(function, shape: input.shape) }
            return .leaf(input)
        }
        self.backwardBody = backward
    }

    /// Runs the backward body once.
    func backward(_ outputGradient: Tensor) -> [Tensor?] {
        guard let body = backwardBody else {
            preconditionFailure(
                "Backward through '\(operation)' a second time: its saved tensors were released "
                    + "by the first backward pass. Run the forward pass again.")
        }
        return body(outputGradient)
    }

    /// Frees the saved tensors and the links to the inputs.
    func release() {
        backwardBody = nil
        edges = []
    }
}

extension Tensor {
    /// Whether an operation on `inputs` must record history.
    static func recordsGradient(_ inputs: [Tensor]) -> Bool {
        GradientMode.isEnabled && inputs.contains { $0.requiresGradient }
    }

    /// Marks `self`, the result of `operation` on `inputs`, as differentiable when history is
    /// being recorded, and returns it.
    ///
    /// - Parameter backward: maps the gradient of `self` to the gradients of `inputs`, in order;
    ///   it may return `nil` for an input that does not require a gradient. It should capture
    ///   only what the gradient needs (shapes rather than tensors where possible), since what it
    ///   captures lives until the backward pass.
    @discardableResult
    func recording(
        _ operation: String, inputs: [Tensor], backward: @escaping (Tensor) -> [Tensor?]
    ) -> Tensor {
        guard Tensor.recordsGradient(inputs) else { return self }
        requiresGradient = true
        gradientFunction = GradientFunction(operation: operation, inputs: inputs, backward: backward)
        return self
    }
}
