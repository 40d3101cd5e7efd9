import Foundation
import SSLCore
import SSLPlugins
import SSLTestSupport
import XCTest

/// The `mocov3` backbone initialisation against `VisionTransformerMoCo` (facebookresearch/moco-v3
/// `vits.py` at the commit pinned in `tools/reference/make_dinov2_fixtures.py`).
///
/// The random streams differ, so each parameter is compared in distribution: exact bounds, and
/// mean and standard deviation within 6 standard errors of the distribution's and of the
/// official draw's. For U(−a, a) the sample standard deviation has relative standard error
/// √(0.2 / n) (Var x² = 4a⁴/45); for a normal, 1/√(2n). At 6 standard errors a correct
/// implementation fails about once in 10⁹ runs; a wrong bound (e.g. the fused 3D + D fan of
/// `qkv`, 0.078 instead of 0.088 at D 384) is off by hundreds of standard errors.
final class MoCoV3InitializationTests: XCTestCase {
    private struct Statistics {
        var mean = 0.0, standardDeviation = 0.0, maximumMagnitude = 0.0
        init(_ tensor: Tensor) {
            let values = tensor.elements.map(Double.init)
            mean = values.reduce(0, +) / Double(values.count)
            standardDeviation = (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count)).squareRoot()
            maximumMagnitude = values.map(abs).max() ?? 0
        }
    }

    func testMoCoV3PresetInitialisesTheBackboneLikeTheOfficialCode() throws {
        let file = try Fixtures.open("dinov2_micro.h5")
        let group = "mocov3_init"
        let configuration = Preset.mocoV3.recipe.backbone
        XCTAssertEqual(configuration.initialization, .mocoV3)
        XCTAssertEqual(configuration.embedDimension, Int(try file.numericAttribute("embed_dim", of: group)))
        XCTAssertEqual(configuration.depth, Int(try file.numericAttribute("depth", of: group)))
        XCTAssertEqual(configuration.heads, Int(try file.numericAttribute("num_heads", of: group)))
        XCTAssertEqual(configuration.patchSize, Int(try file.numericAttribute("patch_size", of: group)))
        XCTAssertEqual(configuration.imageSize, Int(try file.numericAttribute("img_size", of: group)))
        let backbone = VisionTransformer(configuration, seed: 3)
        let parameters = Dictionary(uniqueKeysWithValues: backbone.stateDictionary().map { ($0.name, $0.tensor) })

        let keys = try file.readStrings("\(group)/keys")
        let distributions = try file.readStrings("\(group)/distribution")
        let bounds = try file.readDoubles("\(group)/parameter")
        let counts = try file.readIntegers("\(group)/count")
        let trainable = try file.readIntegers("\(group)/requires_grad")
        let officialMeans = try file.readDoubles("\(group)/mean")
        let officialDeviations = try file.readDoubles("\(group)/std")
        XCTAssertEqual(Set(keys), Set(parameters.keys), "the same parameters as vit_small without its classifier")
        for (index, key) in keys.enumerated() {
            guard let tensor = parameters[key] else { continue }
            XCTAssertEqual(tensor.count, counts[index], key)
            XCTAssertEqual(tensor.requiresGradient, trainable[index] == 1, "\(key) trainable")
            let statistics = Statistics(tensor)
            let n = Double(tensor.count)
            let expectedDeviation: Double, relativeError: Double
            switch distributions[index] {
            case "uniform":
                let bound = bounds[index]
                XCTAssertLessThanOrEqual(statistics.maximumMagnitude, Double(Float(bound)), "\(key) within ±\(bound)")
                XCTAssertGreaterThanOrEqual(statistics.maximumMagnitude, bound * (1 - 20 / n), "\(key) reaches ±\(bound)")
                (expectedDeviation, relativeError) = (bound / 3.0.squareRoot(), (0.2 / n).squareRoot())
            case "normal":
                (expectedDeviation, relativeError) = (bounds[index], 1 / (2 * n).squareRoot())
            case "zeros", "ones":
                let value: Float = distributions[index] == "ones" ? 1 : 0
                XCTAssertTrue(tensor.elements.allSatisfy { $0 == value }, "\(key) is all \(value)")
                continue
            case "sincos":
                XCTAssertEqual(statistics.mean, try file.readDoubles("\(group)/pos_embed_mean")[0], accuracy: 1e-6, key)
                XCTAssertEqual(statistics.standardDeviation, try file.readDoubles("\(group)/pos_embed_std")[0], accuracy: 1e-6, key)
                continue
            default:
                XCTFail("unknown distribution \(distributions[index]) of \(key)")
                continue
            }
            let standardError = expectedDeviation * relativeError
            XCTAssertEqual(statistics.mean, 0, accuracy: 6 * expectedDeviation / n.squareRoot(), "\(key) mean")
            XCTAssertEqual(statistics.standardDeviation, expectedDeviation, accuracy: 6 * standardError, "\(key) std")
            XCTAssertEqual(
                statistics.standardDeviation, officialDeviations[index], accuracy: 6 * 2.0.squareRoot() * standardError,
                "\(key) std against the official draw")
            XCTAssertEqual(
                statistics.mean, officialMeans[index], accuracy: 6 * 2.0.squareRoot() * expectedDeviation / n.squareRoot(),
                "\(key) mean against the official draw")
        }
    }

    func testConfigurationsWithoutInitializationDecodeAsDINO() throws {
        var configuration = VisionTransformerConfiguration.small()
        var object = try JSONSerialization.jsonObject(with: JSONEncoder().encode(configuration)) as! [String: Any]
        XCTAssertEqual(object["initialization"] as? String, "dino")
        object["initialization"] = nil
        let decoded = try JSONDecoder().decode(
            VisionTransformerConfiguration.self, from: JSONSerialization.data(withJSONObject: object))
        XCTAssertEqual(decoded, configuration)
        configuration.initialization = .mocoV3
        let roundTrip = try JSONDecoder().decode(VisionTransformerConfiguration.self, from: JSONEncoder().encode(configuration))
        XCTAssertEqual(roundTrip.initialization, .mocoV3)
    }

    func testMoCoV3RedrawsTheProjectionsAndKeepsTheLayerNorms() {
        let configuration = VisionTransformerConfiguration(embedDimension: 24, depth: 1, heads: 2, patchSize: 8, imageSize: 32)
        var moco = configuration
        moco.initialization = .mocoV3
        let dino = VisionTransformer(configuration, seed: 1), redrawn = VisionTransformer(moco, seed: 1)
        let patchBias = redrawn.patchEmbed.bias.elements
        XCTAssertTrue(patchBias.allSatisfy { $0 == 0 }, "MoCo v3 zeroes the patch projection's bias")
        XCTAssertFalse(dino.patchEmbed.bias.elements.allSatisfy { $0 == 0 }, "DINO keeps PyTorch's Conv2d bias")
        XCTAssertEqual(dino.blocks[0].norm1.weight.elements, redrawn.blocks[0].norm1.weight.elements)
    }
}
