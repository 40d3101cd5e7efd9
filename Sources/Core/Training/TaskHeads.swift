/// A task's trained heads by key, and which of them the teacher keeps an EMA copy of.
///
/// Each head's parameters appear in the student as `<task>.<key>.…`; a head declared with a
/// teacher appears in the teacher network under the same key. The task builds the teacher as a
/// second instance of the head's type (so it can call it); ``Trainer`` checks it, copies the
/// head's state into it, freezes it and updates it by EMA with the backbone:
///
/// ```swift
/// heads = TaskHeads([
///     .head("head", projector, teacher: momentumProjector),
///     .head("predictor", predictor),
/// ])
/// ```
///
/// Declaring a teacher gives the run a teacher network: the task need not also set
/// ``TaskRequirements/needsTeacher``.
public final class TaskHeads: Module {
    /// One head: its key, the trained module and, if the method keeps one, its teacher.
    public struct Member {
        /// The parameter-name component after the task's name (`head` in `dino.head.…`).
        public let key: String
        /// The trained module.
        public let module: Module
        /// The module the trainer keeps as the EMA copy of ``module``: a separate instance of
        /// the same architecture.
        public let teacher: Module?

        /// The head `module` under `key`, with `teacher` as its EMA copy if given.
        public static func head(_ key: String, _ module: Module, teacher: Module? = nil) -> Member {
            Member(key: key, module: module, teacher: teacher)
        }
    }

    /// The heads, in registration order.
    public let members: [Member]

    /// The heads `members`; a task without heads passes none.
    public init(_ members: [Member] = []) {
        self.members = members
    }

    public override var submodules: [(name: String, module: Module)] { members.map { ($0.key, $0.module) } }

    /// Whether any head has a teacher copy.
    public var hasTeacher: Bool { members.contains { $0.teacher != nil } }

    /// The teacher copies under their heads' keys, as the teacher network holds them; `nil`
    /// when no head has one.
    public var teachers: Module? {
        let copies = members.compactMap { member in member.teacher.map { (name: member.key, module: $0) } }
        return copies.isEmpty ? nil : ModuleDictionary(copies)
    }

    /// Copies each head's parameters and buffers into its teacher, as the teacher starts.
    func copyStateIntoTeachers() {
        for member in members { member.teacher?.copyState(from: member.module) }
    }

    /// Checks that the keys are distinct and that every teacher is a module of its head's
    /// parameters and shapes that shares no tensor with any head; `task` names the task in
    /// the error.
    ///
    /// - Throws: ``TrainingError/incompatibleTasks(_:)`` naming the head and what to change.
    func validate(task: String) throws {
        var keys = Set<String>()
        for member in members where !keys.insert(member.key).inserted {
            throw TrainingError.incompatibleTasks(
                "Task '\(task)' declares the head '\(member.key)' twice; give each head its own key.")
        }
        let trained = Set(stateDictionary().map { ObjectIdentifier($0.tensor) })
        for member in members {
            guard let teacher = member.teacher else { continue }
            let name = "\(task).\(member.key)"
            if teacher === member.module {
                throw TrainingError.incompatibleTasks(
                    "Task '\(task)' gives the head '\(member.key)' itself as its teacher, which would freeze it; build "
                        + "the teacher as a second instance of the head's type.")
            }
            if let shared = teacher.stateDictionary().first(where: { trained.contains(ObjectIdentifier($0.tensor)) }) {
                throw TrainingError.incompatibleTasks(
                    "The teacher of '\(name)' shares the tensor '\(shared.name)' with the student's heads; build the "
                        + "teacher as a separate instance so the EMA does not overwrite a trained tensor.")
            }
            do {
                try teacher.checkLoadable(Dictionary(uniqueKeysWithValues: member.module.stateDictionary().map { ($0.name, $0.tensor) }))
            } catch let error as StateLoadingError {
                let difference = error.shapeMismatches.first.map { "'\($0.key)' is \($0.found) in the head, \($0.expected) in the teacher" }
                    ?? error.missingKeys.first.map { "the head has no '\($0)'" }
                    ?? "the teacher has no '\(error.unexpectedKeys.first ?? "")'"
                throw TrainingError.incompatibleTasks(
                    "The teacher of '\(name)' does not match its head (\(difference)); build it with the head's architecture.")
            }
        }
    }
}
