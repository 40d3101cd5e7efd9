import ArgumentParser
import Foundation
import SSLCore
@testable import SSLCommandLine
import SSLPlugins
import XCTest

/// The command line parsed in process: no value of a numeric flag may trap; each is either
/// accepted into a valid recipe or refused with an error that names its flag.
final class ArgumentParsingTests: XCTestCase {
    /// Integer flags of `train` and values around their edges, plus seeded random ones.
    static let integerFlags = [
        "--heads", "--patch-size", "--global-crops", "--global-size", "--local-crops", "--local-size", "--epochs", "--batch-size",
        "--warmup-epochs", "--subset", "--save-every", "--max-steps", "--eval-every", "--log-every", "--loader-threads",
        "--dino.out-dim", "--dino.hidden-dim", "--dino.head-layers",
    ]
    static let realFlags = ["--lr", "--teacher-momentum", "--layer-decay", "--drop-path-rate", "--collective-timeout", "--weights"]

    func testNoIntegerValueTraps() throws {
        var generator = RandomGenerator(seed: 7)
        let edges = [Int.min, Int.min + 1, -1_000_000, -16, -1, 0, 1, 2, 3, 5, 7, 16, 100_000, 1 << 40, Int.max - 1, Int.max]
        for flag in Self.integerFlags {
            let randoms = (0..<4).map { _ in Int(generator.nextUniform() * 2_000_000) - 1_000_000 }
            for value in edges + randoms { try check([flag, "\(value)"]) }
        }
    }

    func testNoRealValueTraps() throws {
        var generator = RandomGenerator(seed: 11)
        let edges = ["nan", "-nan", "inf", "-inf", "0", "-0", "-1", "1e308", "-1e308", "1e-320", "2", "0.5", "abc", ""]
        for flag in Self.realFlags {
            let randoms = (0..<6).map { _ in "\(Double(generator.nextUniform() * 40 - 20))" }
            for value in edges + randoms {
                try check([flag, flag == "--weights" ? "dino=\(value)" : value])
            }
        }
    }

    func testWeightsAndTaskOptionsAreChecked() throws {
        for arguments in [["--weights", "dino=0"], ["--weights", "dino=1,dino=2"], ["--dino.out-dim", "1.5"], ["--dino.out-dim", "-5"]] {
            XCTAssertThrowsError(try recipe(arguments), "\(arguments)")
        }
        XCTAssertEqual(try recipe(["--dino.out-dim", "128"]).tasks.first?.options["out-dim"], "128")
        for arguments in [["--weights", "dino=1@0:x@5%"], ["--weights", "dino=1@0:0.1@5 weeks"], ["--weights", "dino=-1@0"]] {
            XCTAssertThrowsError(try recipe(arguments), "\(arguments)") { error in
                XCTAssertTrue(SSLRun.message(for: error).contains("--weights dino"), SSLRun.message(for: error))
            }
        }
        let scheduled = try recipe(["--weights", "dino=1@0:0.1@100%"])
        XCTAssertEqual(scheduled.tasks.first?.weight, try TaskWeight(parsing: "1@0:0.1@100%"))
    }

    /// `--tasks` keeps the weight and options of a task the starting recipe has and gives a new
    /// task its default weight; an unknown name is refused with the available ones.
    func testTasksKeepTheRecipesSettingsAndAddDefaults() throws {
        func recipe(_ arguments: [String]) throws -> TrainingRecipe {
            let train = try XCTUnwrap(try SSLRun.parseAsRoot(arguments) as? SSLRun.Train)
            return try train.recipeOptions.recipe(registry: .builtIn)
        }
        let chosen = try recipe(["--preset", "fashion-mnist", "--tasks", "selfpatch, moco", "--augmentation", "two-view"])
        XCTAssertEqual(chosen.tasks.map(\.name), ["selfpatch", "moco"])
        XCTAssertEqual(chosen.tasks[0].weight, TaskWeight(0.1), "the preset's SelfPatch weight")
        XCTAssertEqual(chosen.tasks[0].options["out-dim"], "128", "the preset's SelfPatch head")
        XCTAssertEqual(chosen.tasks[1].weight, TaskWeight(1), "MoCo's default weight")
        XCTAssertThrowsError(try recipe(["--tasks", "dino,bogus"])) { error in
            XCTAssertTrue(SSLRun.message(for: error).contains("Unknown task 'bogus'"), SSLRun.message(for: error))
        }
    }

    func testResumeRefusesRecipeFlagsAndAllowsIntervals() throws {
        XCTAssertThrowsError(try SSLRun.parseAsRoot(["--resume", "runs/x", "--arch", "tiny"])) { error in
            XCTAssertTrue(SSLRun.message(for: error).contains("--arch cannot change it"), SSLRun.message(for: error))
        }
        XCTAssertNoThrow(try SSLRun.parseAsRoot(["--resume", "runs/x", "--epochs", "4", "--lr", "0.1", "--log-every", "5", "--save-every", "2"]))
        XCTAssertThrowsError(try SSLRun.parseAsRoot(["--config", "x.json", "--preset", "bogus"]))
    }

    func testExportHasNoFlagThatDoesNothing() {
        XCTAssertThrowsError(try SSLRun.parseAsRoot(["export", "--checkpoint", "c.h5", "--backbone-only", "--output", "v.h5"]))
        XCTAssertNoThrow(try SSLRun.parseAsRoot(["export", "--checkpoint", "c.h5", "--output", "v.h5"]))
    }

    func testMistypedChoicesAreRefusedWhileParsingWithTheValidValues() {
        let cases: [(arguments: [String], flag: String, valid: String)] = [
            (["--preset", "smal"], "--preset", "'fashion-mnist'"), (["--arch", "smal"], "--arch", "'WIDTHxDEPTH'"),
            (["--arch", "192x"], "--arch", "'tiny'"), (["--augmentation", "multicrop"], "--augmentation", "'two-view'"),
            (["--eval-readout", "cls"], "--eval-readout", "'mean-patch'"),
            (["eval", "--checkpoint", "c.h5", "--network", "teachr"], "--network", "'student'"),
            (["export", "--checkpoint", "c.h5", "--from", "teachr", "--output", "v.h5"], "--from", "'teacher'"),
            (["features", "--checkpoint", "c.h5", "--readout", "mean", "--output", "f.h5"], "--readout", "'class'"),
        ]
        for (arguments, flag, valid) in cases {
            XCTAssertThrowsError(try SSLRun.parseAsRoot(arguments), "\(arguments)") { error in
                let message = SSLRun.oneLineMessage(for: error)
                XCTAssertTrue(message.contains(flag) && message.contains(valid), "\(arguments): \(message)")
                XCTAssertFalse(message.contains("\n"), "one line for \(arguments): \(message)")
            }
        }
    }

    func testPresetFormerNameStillWorks() throws {
        let train = try XCTUnwrap(try SSLRun.parseAsRoot(["--preset", "small"]) as? SSLRun.Train)
        XCTAssertEqual(train.recipeOptions.start.preset, .fashionMNIST)
        XCTAssertEqual(try train.recipeOptions.recipe(registry: .builtIn), Preset.fashionMNIST.recipe)
        XCTAssertEqual(try recipe(["--arch", "small"]).backbone.embedDimension, 384, "--arch small is ViT-S")
    }

    func testArchitectureWithoutWholeHeadsAsksForHeads() throws {
        XCTAssertThrowsError(try SSLRun.parseAsRoot(["--arch", "200x2"])) { error in
            XCTAssertTrue(SSLRun.message(for: error).contains("--arch 200x2: width 200 does not split into 3 heads"), SSLRun.message(for: error))
        }
        XCTAssertEqual(try recipe(["--arch", "200x2", "--heads", "4"]).backbone.heads, 4)
    }

    func testStemTakesPositiveWidthsAndKeepsThemAcrossArchitectures() throws {
        XCTAssertEqual(try recipe(["--stem", "32,16"]).backbone.stemChannels, [32, 16])
        XCTAssertEqual(try recipe(["--stem", "32", "--arch", "192x6"]).backbone.stemChannels, [32], "--arch keeps the stem")
        XCTAssertEqual(try recipe(["--stem", "none"]).backbone.stemChannels, [])
        for bad in ["0", "32,", "a", "-4"] {
            XCTAssertThrowsError(try SSLRun.parseAsRoot(["--stem", bad]), bad) { error in
                XCTAssertTrue(SSLRun.message(for: error).contains("--stem \(bad): expected positive channel counts"), SSLRun.message(for: error))
            }
        }
    }

    func testBuiltInDataNamesOpenTheirDatasetsAndBadSidesAreRefused() throws {
        let garments = try XCTUnwrap(try DataOptions.open("garments", split: .test) as? FashionMNISTGarments)
        XCTAssertEqual(garments.source.split, .test)
        XCTAssertEqual(garments.count, 10_000)
        let scenes = try XCTUnwrap(try DataOptions.open("scenes:64") as? FashionMNISTScenes)
        XCTAssertEqual([scenes.canvasSize, scenes.count], [64, 60_000])
        XCTAssertThrowsError(try DataOptions.open("scenes:20")) { error in
            XCTAssertTrue(SSLRun.message(for: error).contains("--data scenes:20: the canvas side must be"), SSLRun.message(for: error))
        }
    }

    func testHelpGroupsTheTrainingOptionsUnderTitles() {
        let help = SSLRun.helpMessage(for: SSLRun.Train.self, columns: 200)
        let titles = ["RECIPE:", "MODEL:", "CROPS:", "OPTIMISATION:", "DATA:", "RUN:"]
        let positions = titles.map { help.range(of: "\n\($0)\n")?.lowerBound }
        XCTAssertFalse(positions.contains(nil), help)
        XCTAssertEqual(positions.compactMap { $0 }, positions.compactMap { $0 }.sorted(), "groups in order")
        for (title, flag) in [("MODEL:", "--arch"), ("CROPS:", "--local-scale"), ("OPTIMISATION:", "--teacher-momentum"), ("RUN:", "--loader-threads")] {
            let section = help[help.range(of: "\n\(title)\n")!.upperBound...].components(separatedBy: "\n\n")[0]
            XCTAssertTrue(section.contains(flag), "\(flag) under \(title): \(section)")
        }
        XCTAssertTrue(help.contains("(values: dino, selfpatch-original, mocov3, dinov2, ibot, fashion-mnist)"), help)
    }

    /// Parses `arguments` (after a tiny DINO recipe) and validates what they describe; any
    /// error must name a flag, a task option or a value.
    private func check(_ arguments: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        do {
            _ = try recipe(arguments)
        } catch {
            let message = SSLRun.message(for: error)
            XCTAssertFalse(message.isEmpty, "\(arguments)", file: file, line: line)
            XCTAssertFalse(message.contains("\n"), "one line for \(arguments): \(message)", file: file, line: line)
        }
    }

    private func recipe(_ arguments: [String]) throws -> TrainingRecipe {
        let tiny = [
            "--tasks", "dino", "--arch", "48x1", "--heads", "2", "--patch-size", "4", "--global-size", "16", "--local-crops", "0", "--batch-size", "16",
            "--dino.out-dim", "64", "--dino.hidden-dim", "32", "--dino.bottleneck-dim", "16",
        ]
        let command = try SSLRun.parseAsRoot(tiny + arguments)
        let train = try XCTUnwrap(command as? SSLRun.Train)
        var recipe = try train.recipeOptions.recipe(registry: .builtIn)
        train.dataOptions.apply(to: &recipe)
        try recipe.validate(registry: .builtIn)
        // Task options are decoded when the tasks are made.
        for selection in recipe.tasks {
            _ = try TaskOptionCoding.decode(DINOTask.Configuration.self, task: selection.name, options: selection.options)
        }
        return recipe
    }
}
