import ArgumentParser
import Foundation
import SSLCore

extension InterpolationProfile: ExpressibleByArgument {}

extension SSLRun {
    struct Interpolate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a checkpoint whose weights lie between a run's and those of the checkpoint it started from.",
            discussion: """
                Weight-space ensembling of a fine-tuned network with its starting point (WiSE-FT,
                Wortsman et al., CVPR 2022): every student and teacher tensor becomes
                (1 - weight) * first + weight * second, or, with --profile depth, a weight that
                rises from --weight at the patch embedding to 1 at the last block. For a second
                phase started with --init-from, it keeps part of what each phase gave:
                  ssl-run interpolate runs/first/checkpoint.h5 runs/second/checkpoint.h5 --weight 0.8 --profile depth --output runs/blend/checkpoint.h5
                """)

        @Argument(help: "The checkpoint the second run started from.") var first: String
        @Argument(help: "The second run's checkpoint; the output keeps its configuration, heads and optimizer state.")
        var second: String
        @Option(help: "The second checkpoint's share, from 0 (the first checkpoint's weights) to 1 (the second's).")
        var weight: Double
        @Option(help: "uniform: every tensor takes --weight; depth: the share rises from --weight at the patch embedding to 1 at the last block (and the heads).")
        var profile: InterpolationProfile = .uniform
        @Option(help: "The checkpoint file to write (its folder is created).") var output: String

        func validate() throws {
            guard weight.isFinite, (0...1).contains(weight) else {
                throw ValidationError("--weight must lie between 0 and 1, got \(weight).")
            }
        }

        func run() throws {
            let description = try Checkpoint.interpolate(from: first, to: second, weight: weight, profile: profile, output: output)
            print("Wrote \(output): \(description).")
        }
    }
}
