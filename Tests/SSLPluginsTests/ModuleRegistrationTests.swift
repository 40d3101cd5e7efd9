import SSLCore
@testable import SSLPlugins
import XCTest

/// Every `Tensor` or `Module` a module stores must be registered (a parameter, a buffer or a
/// sub-module): one left out would be silently neither trained nor saved. The walk uses
/// reflection over every module of a trainer built with each built-in task.
final class ModuleRegistrationTests: XCTestCase {
    /// The unregistered stored tensors and modules under `module`, as `Type.property` paths.
    private func unregistered(in module: Module, path: String, seen: inout Set<ObjectIdentifier>) -> [String] {
        guard seen.insert(ObjectIdentifier(module)).inserted else { return [] }
        let registeredTensors = Set((module.ownParameters + module.ownBuffers).map { ObjectIdentifier($0.tensor) })
        let registeredModules = Set(module.submodules.map { ObjectIdentifier($0.module) })
        var problems: [String] = []
        func inspect(_ value: Any, label: String) {
            let name = "\(type(of: module)).\(label)"
            if let tensor = value as? Tensor {
                if !registeredTensors.contains(ObjectIdentifier(tensor)) {
                    problems.append("\(path): \(name)")
                }
            } else if let child = value as? Module {
                if !registeredModules.contains(ObjectIdentifier(child)) { problems.append("\(path): \(name)") }
            } else {
                let mirror = Mirror(reflecting: value)
                guard mirror.displayStyle == .optional || mirror.displayStyle == .collection
                    || mirror.displayStyle == .tuple || mirror.displayStyle == .dictionary
                else { return }
                for (index, child) in mirror.children.enumerated() { inspect(child.value, label: "\(label)[\(child.label ?? "\(index)")]") }
            }
        }
        var mirror: Mirror? = Mirror(reflecting: module)
        while let current = mirror {
            for child in current.children { inspect(child.value, label: child.label ?? "?") }
            mirror = current.superclassMirror
        }
        for (name, child) in module.submodules {
            problems += unregistered(in: child, path: path.isEmpty ? name : "\(path).\(name)", seen: &seen)
        }
        return problems
    }

    func testEveryStoredTensorAndModuleIsRegistered() throws {
        var backbone = VisionTransformerConfiguration(embedDimension: 32, depth: 2, heads: 2, patchSize: 4, imageSize: 16)
        let views = ViewPlan(globalCount: 2, globalSize: 16, localCount: 2, localSize: 12)
        let small = ["out-dim": "16", "hidden-dim": "16", "bottleneck-dim": "8"]
        let recipes: [[TaskSelection]] = [
            [TaskSelection(name: "dino", options: small), TaskSelection(name: "selfpatch", options: small)],
            [TaskSelection(name: "dino", options: small),
             TaskSelection(name: "selfpatch", options: small.merging(["image-embedding": "true"]) { $1 })],
            [TaskSelection(name: "moco", options: ["dim": "8", "mlp-dim": "16"])],
            [TaskSelection(name: "dino", options: small), TaskSelection(name: "ibot", options: small),
             TaskSelection(name: "koleo")],
        ]
        for tasks in recipes {
            backbone.positionEmbedding = tasks.first?.name == "moco" ? .sineCosine : .learned
            let recipe = TrainingRecipe(backbone: backbone, views: views, tasks: tasks, epochs: 1, batchSize: 2)
            let trainer = try recipe.makeTrainer(registry: .builtIn, iterationsPerEpoch: 1)
            var seen = Set<ObjectIdentifier>()
            for network in [trainer.student, trainer.teacher].compactMap({ $0 }) {
                XCTAssertEqual(unregistered(in: network, path: "", seen: &seen), [], "\(tasks.map(\.name))")
            }
        }
    }

    /// A module that forgets to register one of its tensors and one of its layers.
    private final class ForgetfulModule: Module {
        let registered = Tensor.zeros([2])
        let forgotten = Tensor.zeros([2])
        let layers = [Linear(inputFeatures: 2, outputFeatures: 2, generator: &ForgetfulModule.generator)]
        nonisolated(unsafe) static var generator = RandomGenerator(seed: 0)
        override var ownParameters: [(name: String, tensor: Tensor)] { [("registered", registered)] }
    }

    func testTheWalkFindsWhatIsNotRegistered() {
        var seen = Set<ObjectIdentifier>()
        XCTAssertEqual(unregistered(in: ForgetfulModule(), path: "", seen: &seen),
                       [": ForgetfulModule.forgotten", ": ForgetfulModule.layers[0]"])
    }
}
