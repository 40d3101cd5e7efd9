/// A module that only groups named sub-modules, like PyTorch's `nn.ModuleDict`.
public final class ModuleDictionary: Module {
    private let children: [(name: String, module: Module)]

    public init(_ children: [(name: String, module: Module)]) {
        self.children = children
    }

    public override var submodules: [(name: String, module: Module)] { children }
}
