import SSLCore
@testable import SSLPlugins
import XCTest

/// Every preset builds a run (its option names and values are valid and its tasks fit
/// together), here at a tiny size; and iBOT's preset holds the official ViT-S/16 command's values.
final class PresetTests: XCTestCase {
    func testEveryPresetBuildsATrainer() throws {
        for preset in Preset.allCases {
            var recipe = preset.recipe
            recipe.backbone.embedDimension = 24
            recipe.backbone.depth = 1
            recipe.backbone.heads = 2
            recipe.backbone.patchSize = 4
            recipe.backbone.imageSize = 32
            recipe.views.globalSize = 32
            recipe.views.localSize = 12
            recipe.batchSize = 4
            for index in recipe.tasks.indices where recipe.tasks[index].options["out-dim"] != nil {
                recipe.tasks[index].options.merge(["out-dim": "32", "hidden-dim": "16", "bottleneck-dim": "8"]) { $1 }
            }
            XCTAssertNoThrow(try recipe.makeTrainer(registry: .builtIn, iterationsPerEpoch: 2), preset.rawValue)
        }
    }

    func testIBOTPresetFollowsTheOfficialCommand() throws {
        let recipe = Preset.ibot.recipe
        XCTAssertEqual(recipe.tasks.map(\.name), ["dino", "ibot"])
        XCTAssertEqual(recipe.tasks[0].options["out-dim"], "8192")
        XCTAssertEqual(recipe.tasks[0].options["norm-last-layer"], "false")
        XCTAssertEqual(recipe.tasks[1].options["shared-head"], "true")
        XCTAssertEqual(recipe.views, ViewPlan(globalCount: 2, globalSize: 224, localCount: 10, localSize: 96))
        XCTAssertEqual(recipe.augmentation?.globalScale, 0.25...1)
        XCTAssertEqual(recipe.augmentation?.localScale, 0.05...0.25)
        XCTAssertEqual(recipe.epochs, 800)
        XCTAssertEqual(recipe.optimization.learningRate, 5e-4)
        XCTAssertEqual(recipe.backbone.dropPathRate, 0.1)
    }
}
