/// A building block of a network that owns named parameters and sub-modules.
///
/// Names compose with dots into PyTorch state-dict keys (`blocks.0.attn.qkv.weight`), which
/// serve as optimizer-state keys, checkpoint dataset names and freeze filters alike. Subclasses
/// list what they own explicitly:
///
/// ```swift
/// final class Scale: Module {
///     let factor = Tensor.ones([1])
///     override var ownParameters: [(name: String, tensor: Tensor)] { [("factor", factor)] }
///     func callAsFunction(_ x: Tensor) -> Tensor { x * factor }
/// }
/// ```
open class Module {
    /// Whether the module is in training mode (drop-path active, batch statistics used).
    public private(set) var isTraining = true

    public init() {}

    /// The tensors this module owns directly (trainable or frozen), by local name.
    open var ownParameters: [(name: String, tensor: Tensor)] { [] }

    /// State that is saved with the module but never trained (e.g. running statistics).
    open var ownBuffers: [(name: String, tensor: Tensor)] { [] }

    /// The direct sub-modules, by local name.
    open var submodules: [(name: String, module: Module)] { [] }

    /// Every parameter of this module and its descendants, with dotted names, in registration
    /// order.
    public final func namedParameters() -> [(name: String, tensor: Tensor)] {
        collect(\.ownParameters)
    }

    /// Every buffer of this module and its descendants, with dotted names.
    public final func namedBuffers() -> [(name: String, tensor: Tensor)] {
        collect(\.ownBuffers)
    }

    /// The parameters that receive gradients.
    public final func trainableParameters() -> [(name: String, tensor: Tensor)] {
        namedParameters().filter { $0.tensor.requiresGradient }
    }

    /// Parameters and buffers together: what a checkpoint stores for this module.
    public final func stateDictionary() -> [(name: String, tensor: Tensor)] {
        namedParameters() + namedBuffers()
    }

    /// The number of parameter elements, trainable and frozen.
    public final var parameterCount: Int {
        namedParameters().reduce(0) { $0 + $1.tensor.count }
    }

    /// Switches this module and all descendants to training or evaluation mode.
    public final func setTraining(_ training: Bool) {
        isTraining = training
        for (_, module) in submodules { module.setTraining(training) }
    }

    /// Clears the gradients of every parameter.
    public final func clearGradients() {
        for (_, tensor) in namedParameters() { tensor.gradient = nil }
    }

    /// Copies values from `state` by name into this module's parameters and buffers.
    ///
    /// - Parameter strict: require that the names match exactly, as PyTorch's strict loading.
    /// - Throws: ``StateLoadingError`` listing missing keys, unexpected keys and shape
    ///   mismatches; nothing is modified when it throws.
    public final func load(_ state: [String: Tensor], strict: Bool = true) throws {
        try checkLoadable(state, strict: strict)
        for (name, tensor) in stateDictionary() {
            if let value = state[name] { tensor.assign(value) }
        }
    }

    /// Throws what ``load(_:strict:)`` would throw for `state`, modifying nothing.
    public final func checkLoadable(_ state: [String: Tensor], strict: Bool = true) throws {
        let own = stateDictionary()
        let ownNames = Set(own.map(\.name))
        var error = StateLoadingError()
        for (name, tensor) in own {
            guard let value = state[name] else {
                error.missingKeys.append(name)
                continue
            }
            if value.shape != tensor.shape {
                error.shapeMismatches.append(.init(key: name, expected: tensor.shape, found: value.shape))
            }
        }
        error.unexpectedKeys = state.keys.filter { !ownNames.contains($0) }.sorted()
        if !error.shapeMismatches.isEmpty
            || (strict && (!error.missingKeys.isEmpty || !error.unexpectedKeys.isEmpty))
        {
            throw error
        }
    }

    /// Copies every parameter and buffer from `other`, a module of the same architecture.
    public final func copyState(from other: Module) {
        let source = Dictionary(uniqueKeysWithValues: other.stateDictionary().map { ($0.name, $0.tensor) })
        do {
            try load(source)
        } catch {
            preconditionFailure("copyState(from:) between modules of different architectures: \(error)")
        }
    }

    private func collect(
        _ members: KeyPath<Module, [(name: String, tensor: Tensor)]>
    ) -> [(name: String, tensor: Tensor)] {
        var result = self[keyPath: members]
        for (prefix, module) in submodules {
            result += module.collect(members).map { ("\(prefix).\($0.name)", $0.tensor) }
        }
        return result
    }
}

/// Why a state dictionary does not fit a module, in the form of PyTorch's strict loading.
public struct StateLoadingError: Error, CustomStringConvertible {
    /// A key present in both with different shapes.
    public struct ShapeMismatch: Sendable {
        public var key: String
        public var expected: [Int]
        public var found: [Int]
    }

    public var missingKeys: [String] = []
    public var unexpectedKeys: [String] = []
    public var shapeMismatches: [ShapeMismatch] = []

    public var description: String {
        var lines = ["Error(s) in loading state:"]
        if !missingKeys.isEmpty { lines.append("  Missing key(s): \(missingKeys.joined(separator: ", "))") }
        if !unexpectedKeys.isEmpty { lines.append("  Unexpected key(s): \(unexpectedKeys.joined(separator: ", "))") }
        for mismatch in shapeMismatches {
            lines.append(
                "  Size mismatch for \(mismatch.key): the file has \(mismatch.found), the model expects \(mismatch.expected).")
        }
        return lines.joined(separator: "\n")
    }
}
