import ArgumentParser
import Foundation
import SSLCore
import SSLPlugins

extension SSLRun {
    struct Train: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Pre-train a backbone (the default command).")

        @OptionGroup var recipeOptions: RecipeOptions
        @Flag(help: "Print the resolved run configuration as JSON and exit.")
        var printConfig = false

        func run() throws {
            let recipe = try recipeOptions.recipe(registry: SSLRun.registry)
            if printConfig {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(recipe), as: UTF8.self))
                return
            }
            // Validate the whole combination before any data is read.
            _ = try recipe.makeTrainer(registry: SSLRun.registry, iterationsPerEpoch: 1)
            throw ValidationError("Training needs the data pipeline, which is not merged yet.")
        }
    }
}
