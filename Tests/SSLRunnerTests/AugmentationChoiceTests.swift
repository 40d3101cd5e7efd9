import Foundation
@testable import SSLCommandLine
import SSLCore
import SSLPlugins
import XCTest

/// How a run's augmentation is chosen: the tasks' wishes, whatever their order; the flags that
/// override them; and configurations written before the augmentation was stored.
final class AugmentationChoiceTests: XCTestCase {
    private func recipe(_ arguments: [String]) throws -> TrainingRecipe {
        let command = try SSLRun.parseAsRoot(arguments)
        let train = try XCTUnwrap(command as? SSLRun.Train)
        return try train.recipeOptions.recipe(registry: .builtIn)
    }

    private func crops(_ recipe: TrainingRecipe) throws -> MultiCropRecipe {
        try recipe.augmentation(registry: .builtIn).crops(for: recipe.views)
    }

    func testTheOrderOfTheTasksDoesNotChangeTheViews() throws {
        let forward = try recipe(["--tasks", "dino,selfpatch"]), backward = try recipe(["--tasks", "selfpatch,dino"])
        XCTAssertEqual(forward.augmentation, SelfPatchTask.augmentation)
        XCTAssertEqual(backward.augmentation, forward.augmentation)
        XCTAssertEqual(try crops(backward), try crops(forward))
        XCTAssertEqual(try recipe(["--tasks", "koleo,moco"]).augmentation, .twoView)
        XCTAssertEqual(try recipe(["--tasks", "dino,koleo"]).augmentation, .multiCrop, "no wish: DINO's multi-crop")
        XCTAssertEqual(try recipe([]).augmentation, .multiCrop, "the small preset keeps the crops it was measured with")
    }

    func testTasksThatDisagreeAreRefusedUntilOneIsChosen() throws {
        XCTAssertThrowsError(try recipe(["--tasks", "selfpatch,moco"])) { error in
            let message = SSLRun.message(for: error)
            XCTAssertTrue(message.contains("'selfpatch' and 'moco'") && message.contains("--augmentation"), message)
            XCTAssertFalse(message.contains("\n"), message)
        }
        let chosen = try recipe(["--tasks", "selfpatch,moco", "--augmentation", "two-view", "--local-scale", "0.1,0.3"])
        XCTAssertEqual(chosen.augmentation, AugmentationRecipe(family: .twoView, globalScale: 0.08...1, localScale: 0.1...0.3))
    }

    func testScalesAreStoredAndCheckedAndReachTheCrops() throws {
        let scaled = try recipe(["--tasks", "dino", "--global-scale", "0.25,1", "--local-scale", "0.05, 0.2"])
        XCTAssertEqual(scaled.augmentation, AugmentationRecipe(globalScale: 0.25...1, localScale: 0.05...0.2))
        let views = try crops(scaled).views
        XCTAssertEqual(views.map(\.scale), [0.25...1, 0.25...1] + Array(repeating: 0.05...0.2, count: scaled.views.localCount))
        for bad in ["0.5", "0,1", "0.6,0.4", "0.2,1.5", "a,b"] {
            XCTAssertThrowsError(try recipe(["--global-scale", bad]), bad) { error in
                XCTAssertTrue(SSLRun.message(for: error).contains("--global-scale"), "\(error)")
            }
        }
    }

    func testTheHueIsStoredCheckedKeptAndReachesTheCrops() throws {
        let turned = try recipe(["--hue", "0.5"])
        XCTAssertEqual(turned.augmentation?.hue, 0.5)
        XCTAssertEqual(try crops(turned).views.map(\.hue), Array(repeating: 0.5, count: turned.views.globalCount + turned.views.localCount))
        XCTAssertEqual(try recipe(["--hue", "0.3", "--tasks", "dino,koleo"]).augmentation?.hue, 0.3)
        XCTAssertEqual(try recipe(["--hue", "0.3", "--augmentation", "two-view"]).augmentation?.hue, 0.3)
        let presetHue = try XCTUnwrap(try recipe([]).augmentation?.hue)
        XCTAssertEqual(try recipe(["--tasks", "dino,koleo"]).augmentation?.hue, presetHue, "choosing tasks keeps the preset's hue")
        for bad in ["-0.1", "0.6", "x"] {
            XCTAssertThrowsError(try recipe(["--hue", bad]), bad) { error in
                let message = SSLRun.message(for: error)
                XCTAssertTrue(message.contains("--hue") || message.contains("hue"), message)
            }
        }
    }

    func testTheRandomBackgroundIsStoredCheckedKeptAndReachesTheCrops() throws {
        let redrawn = try recipe(["--random-background", "0.8"])
        XCTAssertEqual(redrawn.augmentation?.background, 0.8)
        XCTAssertTrue(try XCTUnwrap(redrawn.augmentation).summary.hasSuffix("backgrounds redrawn with p 0.8"))
        for view in try crops(redrawn).views {
            XCTAssertEqual(view.backgroundProbability, 0.8)
            XCTAssertEqual(view.augmentations.compactMap { $0 as? RandomBackground }, [RandomBackground(probability: 0.8)])
        }
        XCTAssertEqual(try recipe(["--random-background", "1", "--tasks", "dino,koleo"]).augmentation?.background, 1)
        // The references' crops have no such step, so their random draws are unchanged.
        XCTAssertEqual(try recipe([]).augmentation?.background, 0)
        XCTAssertTrue(try crops(try recipe([])).views.allSatisfy { !$0.augmentations.contains { $0 is RandomBackground } })
        // A configuration written before the background was stored reads as the references'.
        let encoded = try JSONEncoder().encode(AugmentationRecipe(hue: 0.3))
        var object = try XCTUnwrap(try JSONSerialization.jsonObject(with: encoded) as? [String: Any])
        object["background"] = nil
        let decoded = try JSONDecoder().decode(AugmentationRecipe.self, from: try JSONSerialization.data(withJSONObject: object))
        XCTAssertEqual(decoded, AugmentationRecipe(hue: 0.3))
        for bad in ["-0.1", "1.5", "nan", "x"] {
            XCTAssertThrowsError(try recipe(["--random-background", bad]), bad) { error in
                XCTAssertTrue(SSLRun.message(for: error).contains("--random-background"), SSLRun.message(for: error))
            }
        }
    }

    func testThePasteIsStoredCheckedAndReachesTheLocalCropsOnly() throws {
        let pasted = try recipe(["--paste", "0.5", "--tasks", "dino,pastedino"])
        XCTAssertEqual(pasted.augmentation?.paste, 0.5)
        XCTAssertTrue(try XCTUnwrap(pasted.augmentation).summary.hasSuffix("local crops pasted among distractors with p 0.5"))
        XCTAssertEqual(
            try crops(pasted).views.map(\.pasteProbability),
            Array(repeating: 0, count: pasted.views.globalCount) + Array(repeating: 0.5, count: pasted.views.localCount))
        XCTAssertEqual(try recipe(["--paste", "1", "--augmentation", "two-view", "--local-crops", "2"]).augmentation?.paste, 1)
        // Off, it is not written: configurations and checkpoints of runs without it stay as they were.
        let plain = try recipe([])
        XCTAssertEqual(plain.augmentation?.paste, 0)
        XCTAssertFalse(try plain.prettyJSON().contains("paste"))
        // Written when on, and read back from a configuration file.
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("paste-\(getpid()).json").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try pasted.prettyJSON().write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertEqual(try TrainingRecipe(jsonFile: path), pasted)
        for bad in ["2", "-0.1", "nan", "x"] {
            XCTAssertThrowsError(try recipe(["--paste", bad]), bad) { error in
                let message = SSLRun.message(for: error)
                XCTAssertTrue(message.contains("--paste"), message)
                XCTAssertFalse(message.contains("\n"), message)
            }
        }
        // Only local crops are pasted: a run without any is refused.
        XCTAssertThrowsError(try recipe(["--paste", "1", "--local-crops", "0"]).validate(registry: .builtIn)) { error in
            XCTAssertTrue("\(error)".contains("--paste") && "\(error)".contains("--local-crops"), "\(error)")
        }
    }

    func testConfigurationsKeepTheirAugmentation() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("augmentation-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        // Written before the augmentation was stored: no key, and the first task's wish.
        var old = try recipe(["--tasks", "selfpatch,dino"])
        old.augmentation = nil
        let oldPath = folder.appendingPathComponent("old.json").path
        try old.prettyJSON().write(toFile: oldPath, atomically: true, encoding: .utf8)
        XCTAssertFalse(try String(contentsOfFile: oldPath, encoding: .utf8).contains("augmentation"))
        let decoded = try TrainingRecipe(jsonFile: oldPath)
        XCTAssertNil(decoded.augmentation)
        XCTAssertEqual(try decoded.augmentation(registry: .builtIn), SelfPatchTask.augmentation)
        XCTAssertNil(try recipe(["--config", oldPath]).augmentation, "kept as it was")
        // Stored: read back as written.
        let stored = try recipe(["--tasks", "dino", "--global-scale", "0.3,0.9"])
        let storedPath = folder.appendingPathComponent("new.json").path
        try stored.prettyJSON().write(toFile: storedPath, atomically: true, encoding: .utf8)
        XCTAssertEqual(try TrainingRecipe(jsonFile: storedPath).augmentation, stored.augmentation)
        // Written before the hue was stored: the references' hue.
        let withoutHue = try String(contentsOfFile: storedPath, encoding: .utf8)
            .replacingOccurrences(of: #"\s*"hue" : [0-9.]+,?"#, with: "", options: .regularExpression)
        XCTAssertFalse(withoutHue.contains("hue"))
        let withoutHuePath = folder.appendingPathComponent("without-hue.json").path
        try withoutHue.write(toFile: withoutHuePath, atomically: true, encoding: .utf8)
        XCTAssertEqual(try TrainingRecipe(jsonFile: withoutHuePath).augmentation?.hue, AugmentationRecipe.referenceHue)
    }
}
