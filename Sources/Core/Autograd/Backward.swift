extension Tensor {
    /// Computes the gradient of this tensor with respect to every leaf that requires one and
    /// adds it to the leaf's ``gradient``.
    ///
    /// Gradients accumulate across calls until they are cleared, so several losses can be
    /// back-propagated one after another. The recorded history is released as the pass goes,
    /// which frees the saved activations.
    ///
    /// - Parameter seed: the gradient of the final objective with respect to this tensor; by
    ///   default 1, which requires this tensor to hold a single element.
    public func backward(seed: Tensor? = nil) {
        precondition(
            requiresGradient,
            "backward() on \(describe), which does not depend on any tensor that requires a gradient.")
        let initial: Tensor
        if let seed {
            precondition(
                seed.shape == shape,
                "The backward seed \(seed.shape) must have the shape of \(describe).")
            initial = seed
        } else {
            precondition(
                count == 1,
                "backward() without a seed needs a one-element tensor, \(describe) has \(count) elements.")
            initial = Tensor(shape: shape, repeating: 1)
        }
        // Backward bodies use differentiable operations; they must not record history.
        GradientMode.withoutGradient { propagate(initial) }
    }

    private func propagate(_ initial: Tensor) {
        var pending = GradientAccumulator()
        pending.add(initial, to: self)
        for tensor in topologicalOrder() {
            guard let gradient = pending.take(tensor) else { continue }
            guard let function = tensor.gradientFunction else {
                tensor.accumulateLeafGradient(gradient)
                continue
            }
            let inputGradients = function.backward(gradient)
            for (input, inputGradient) in zip(function.inputs, inputGradients) {
                guard input.requiresGradient, let inputGradient else { continue }
                precondition(
                    inputGradient.shape == input.shape,
                    "Backward of '\(function.operation)' produced a gradient \(inputGradient.shape) "
                        + "for input \(input.describe).")
                pending.add(inputGradient, to: input)
            }
            function.release()
            tensor.gradientFunction = nil
        }
    }

    /// The tensors this one depends on through recorded operations, each after every tensor
    /// that uses it.
    private func topologicalOrder() -> [Tensor] {
        var visited = Set<ObjectIdentifier>()
        var postOrder: [Tensor] = []
        // Iterative depth-first search: (tensor, next input index to visit).
        var stack: [(Tensor, Int)] = [(self, 0)]
        visited.insert(ObjectIdentifier(self))
        while let (tensor, index) = stack.popLast() {
            let inputs = tensor.gradientFunction?.inputs ?? []
            if index < inputs.count {
                stack.append((tensor, index + 1))
                let input = inputs[index]
                if input.requiresGradient, visited.insert(ObjectIdentifier(input)).inserted {
                    stack.append((input, 0))
                }
            } else {
                postOrder.append(tensor)
            }
        }
        return postOrder.reversed()
    }

    private func accumulateLeafGradient(_ contribution: Tensor) {
        if let gradient {
            gradient.addInPlace(contribution)
        } else {
            gradient = contribution.copy()
        }
    }
}

/// Sums the gradient contributions that reach each tensor during a backward pass.
private struct GradientAccumulator {
    private var sums: [ObjectIdentifier: Tensor] = [:]
    /// Sums that this accumulator allocated, so it may add into them in place; other tensors
    /// may be shared with backward closures and must not be written.
    private var owned: Set<ObjectIdentifier> = []

    mutating func add(_ contribution: Tensor, to tensor: Tensor) {
        let key = ObjectIdentifier(tensor)
        guard let existing = sums[key] else {
            sums[key] = contribution
            return
        }
        if owned.contains(ObjectIdentifier(existing)) {
            existing.addInPlace(contribution)
        } else {
            let sum = existing.detached().adding(contribution)
            owned.insert(ObjectIdentifier(sum))
            sums[key] = sum
        }
    }

    mutating func take(_ tensor: Tensor) -> Tensor? {
        guard let sum = sums.removeValue(forKey: ObjectIdentifier(tensor)) else { return nil }
        owned.remove(ObjectIdentifier(sum))
        return sum
    }
}
