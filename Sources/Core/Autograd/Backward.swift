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
        guard let root = gradientFunction else {
            var leaves = LeafGradients(seed: initial)
            leaves.add(initial, to: self)
            return
        }
        // Backward bodies use differentiable operations; they must not record history.
        GradientMode.withoutGradient { Self.propagate(initial, from: root) }
        gradientFunction = nil
    }

    private static func propagate(_ initial: Tensor, from root: GradientFunction) {
        var pending = GradientAccumulator()
        pending.add(initial, to: root)
        var leaves = LeafGradients(seed: initial)
        for function in topologicalOrder(from: root) {
            guard let gradient = pending.take(function) else { continue }
            let inputGradients = function.backward(gradient)
            for (edge, inputGradient) in zip(function.edges, inputGradients) {
                guard let inputGradient else { continue }
                switch edge {
                case .none:
                    continue
                case .leaf(let leaf):
                    precondition(
                        inputGradient.shape == leaf.shape,
                        "Backward of '\(function.operation)' produced a gradient \(inputGradient.shape) for \(leaf.describe).")
                    leaves.add(inputGradient, to: leaf)
                case .node(let producer, let shape):
                    precondition(
                        inputGradient.shape == shape,
                        "Backward of '\(function.operation)' produced a gradient \(inputGradient.shape) for an input of shape \(shape).")
                    pending.add(inputGradient, to: producer)
                }
            }
            function.release()
        }
    }

    /// The operations `root` depends on, each after every operation that uses its result.
    private static func topologicalOrder(from root: GradientFunction) -> [GradientFunction] {
        var visited: Set<ObjectIdentifier> = [ObjectIdentifier(root)]
        var postOrder: [GradientFunction] = []
        // Iterative depth-first search: (operation, next edge to visit).
        var stack: [(GradientFunction, Int)] = [(root, 0)]
        while let (function, index) = stack.popLast() {
            if index < function.edges.count {
                stack.append((function, index + 1))
                if case .node(let producer, _) = function.edges[index],
                    visited.insert(ObjectIdentifier(producer)).inserted
                {
                    stack.append((producer, 0))
                }
            } else {
                postOrder.append(function)
            }
        }
        return postOrder.reversed()
    }
}

/// Adds the contributions that reach leaves during one backward pass to their gradients.
///
/// A leaf without a gradient takes the contribution itself, not a copy (saving a copy of every
/// parameter's gradient each step, and the moment two copies of the largest are live), unless
/// the contribution's buffer is the seed's (which the caller keeps) or another leaf's. Until the
/// pass ends, a taken buffer may also be pending for an operation, so a second contribution to
/// such a leaf makes a new sum instead of writing into it.
private struct LeafGradients {
    /// Buffers taken as gradients in this pass, and the seed's.
    private var takenBuffers: Set<ObjectIdentifier>
    /// Leaves whose gradient is a buffer taken in this pass.
    private var takingLeaves: Set<ObjectIdentifier> = []

    init(seed: Tensor) {
        takenBuffers = [ObjectIdentifier(seed.storage)]
    }

    mutating func add(_ contribution: Tensor, to leaf: Tensor) {
        let key = ObjectIdentifier(leaf)
        if let gradient = leaf.gradient {
            if takingLeaves.remove(key) != nil {
                leaf.gradient = gradient.adding(contribution)
            } else {
                gradient.addInPlace(contribution)
            }
        } else if takenBuffers.insert(ObjectIdentifier(contribution.storage)).inserted {
            leaf.gradient = contribution
            takingLeaves.insert(key)
        } else {
            leaf.gradient = contribution.copy()
        }
    }
}

/// Sums the gradient contributions that reach each operation's output during a backward pass.
private struct GradientAccumulator {
    private var sums: [ObjectIdentifier: Tensor] = [:]
    /// Sums that this accumulator allocated, so it may add into them in place; other tensors
    /// may be shared with backward closures and must not be written.
    private var owned: Set<ObjectIdentifier> = []

    mutating func add(_ contribution: Tensor, to function: GradientFunction) {
        let key = ObjectIdentifier(function)
        guard let existing = sums[key] else {
            sums[key] = contribution
            return
        }
        if owned.contains(ObjectIdentifier(existing)) {
            existing.addInPlace(contribution)
        } else {
            let sum = existing.adding(contribution)
            owned.insert(ObjectIdentifier(sum))
            sums[key] = sum
        }
    }

    mutating func take(_ function: GradientFunction) -> Tensor? {
        guard let sum = sums.removeValue(forKey: ObjectIdentifier(function)) else { return nil }
        owned.remove(ObjectIdentifier(sum))
        return sum
    }
}
