import SSLCore

extension TaskRegistry {
    /// A registry with the tasks this package ships: `dino`, `selfpatch`, `moco`.
    public static var builtIn: TaskRegistry {
        var registry = TaskRegistry()
        registry.register(DINOTask.self)
        registry.register(SelfPatchTask.self)
        registry.register(MoCoTask.self)
        return registry
    }
}
