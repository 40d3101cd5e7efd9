/// The record of one operation: its inputs and how to turn the gradient of its output into
/// gradients of those inputs.
final class GradientFunction {
    /// The operation's name, for error messages and debugging.
    let operation: String
    /// The inputs whose gradients `backward` returns, in the same order.
    private(set) var inputs: [Tensor]
    /// Maps the output gradient to one gradient per input (`nil` where none is needed).
    private var backwardBody: ((Tensor) -> [Tensor?])?

    init(operation: String, inputs: [Tensor], backward: @escaping (Tensor) -> [Tensor?]) {
        self.operation = operation
        self.inputs = inputs
        self.backwardBody = backward
    }

    /// Whether the saved state was already released by a backward pass.
    var isReleased: Bool { backwardBody == nil }

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
        inputs = []
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
    ///   it may return `nil` for an input that does not require a gradient.
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
