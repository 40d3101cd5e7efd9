import ArgumentParser
import Foundation
import SSLCore
import SSLPlugins

/// The `ssl-run` command. A package that adds pretext tasks runs the same command with its
/// tasks registered:
///
/// ```swift
/// var registry = TaskRegistry.builtIn
/// registry.register(RotationTask.self)
/// SSLRun.main(registry: registry)
/// ```
public struct SSLRun: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "ssl-run",
        abstract: "Self-supervised pre-training of Vision Transformers with composable pretext tasks.",
        discussion: """
            Mix objectives by weight over one backbone:
              ssl-run --tasks dino,selfpatch --weights dino=1,selfpatch=0.1
            Task options are namespaced: --dino.out-dim 4096, --selfpatch.k-num 2 (see `ssl-run tasks`).
            """,
        subcommands: [Train.self, Evaluate.self, Report.self, Export.self, Features.self, Interpolate.self, Tasks.self],
        defaultSubcommand: Train.self)

    public init() {}

    /// The tasks the command knows; set once, by ``main(registry:)``, before parsing.
    nonisolated(unsafe) static var registry = TaskRegistry.builtIn

    /// Runs the command with `registry`'s tasks (restarting first, when OpenBLAS chose slower
    /// kernels than the processor supports: see ``BLAS/restartWithNativeKernelsIfNeeded()``).
    public static func main(registry: TaskRegistry) {
        BLAS.restartWithNativeKernelsIfNeeded()
        self.registry = registry
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let message = oneLineMessage(for: error)
            guard message != self.message(for: error) else { exit(withError: error) }
            FileHandle.standardError.write(Data("Error: \(message)\n".utf8))
            exit(withError: ExitCode.validationFailure)
        }
    }

    /// The error's message on one line: swift-argument-parser lists more than a few valid values
    /// of a choice as bullet lines, which this joins into the sentence.
    static func oneLineMessage(for error: Error) -> String {
        let lines = message(for: error).split(separator: "\n", omittingEmptySubsequences: true)
        let values = lines.filter { $0.hasPrefix("  - ") }.map { "'\($0.dropFirst(4))'" }
        guard !values.isEmpty, let sentence = lines.first(where: { !$0.hasPrefix("  - ") }) else { return message(for: error) }
        return sentence.replacingOccurrences(of: "one of the following:", with: "one of") + " "
            + values.joined(separator: ", ") + "."
    }
}

extension SSLRun {
    struct Tasks: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the pretext tasks with their options and defaults.")

        func run() {
            for entry in SSLRun.registry.entries {
                print("\(entry.name) — \(entry.summary) (default weight \(entry.defaultWeight))")
                let keyWidth = entry.defaults.map(\.key.count).max() ?? 0
                let valueWidth = entry.defaults.map(\.value.count).max() ?? 0
                for option in entry.defaults {
                    let key = option.key.padding(toLength: keyWidth, withPad: " ", startingAt: 0)
                    let value = option.value.padding(toLength: valueWidth, withPad: " ", startingAt: 0)
                    print("  --\(entry.name).\(key)  \(value)  \(option.help)")
                }
                print("")
            }
            print("Presets (--preset):")
            for preset in Preset.allCases { print("  \(preset.rawValue): \(preset.summary)") }
        }
    }
}
