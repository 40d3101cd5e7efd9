import SSLCore

extension TaskRegistry {
    /// A registry with the tasks this package ships: `dino`, `selfpatch`, `moco`, `koleo`, `ibot`, `regiondino`,
    /// `pastedino`, `pasteembed`.
    public static var builtIn: TaskRegistry {
        var registry = TaskRegistry()
        registry.register(DINOTask.self)
        registry.register(SelfPatchTask.self)
        registry.register(MoCoTask.self)
        registry.register(KoLeoTask.self)
        registry.register(IBOTTask.self)
        registry.register(RegionDistillationTask.self)
        registry.register(PastedDistillationTask.self)
        registry.register(PastedEmbeddingTask.self)
        return registry
    }
}
