import Foundation
import SSLCore
import SSLTestSupport
import XCTest

/// The ViT backbone against PyTorch: every intermediate activation, the gradients of a scalar
/// loss with respect to every parameter and the input, for a reference-size input and a
/// smaller one that interpolates the position table.
final class VisionTransformerFixtureTests: XCTestCase {
    func testPatch16At224And96() throws {
        try checkFixture("vit_p16.h5", inputSizes: [224, 96])
    }

    func testPatch4At32And16() throws {
        try checkFixture("vit_p4.h5", inputSizes: [32, 16])
    }

    /// A patch embedding after a stem of two 3 × 3 convolutions with GELU, against `torch.nn`
    /// (`Conv2d`, `GELU`): output and the gradients of every parameter and of the input.
    func testPatchEmbeddingAfterAConvolutionalStem() throws {
        let file = try Fixtures.open("patch_embed_stem.h5")
        var generator = RandomGenerator(seed: 0)
        let embedding = PatchEmbed(patchSize: 7, stemChannels: [4, 5], features: 6, generator: &generator)
        XCTAssertEqual(
            embedding.namedParameters().map(\.name).sorted(),
            try file.members(of: "params").sorted(), "PyTorch's state-dict names")
        var state: [String: Tensor] = [:]
        for key in try file.members(of: "params") { state[key] = try file.readTensor("params/\(key)") }
        try embedding.load(state)
        let input = try file.readTensor("input")
        input.requiresGradient = true
        let output = embedding(input)
        assertClose(output, try file.readTensor("output"), absoluteTolerance: 1e-5, relativeTolerance: 1e-5, "stem output")
        (output * (try file.readTensor("loss_weights"))).sum().backward()
        for (key, parameter) in embedding.namedParameters() {
            assertRelativeError(parameter.gradient!, try file.readTensor("grads/\(key)"), below: 1e-4, "gradient of \(key)")
        }
        assertRelativeError(input.gradient!, try file.readTensor("grads/input_grad"), below: 1e-4, "input gradient")
    }

    /// A backbone configured with a stem names its layers as PyTorch would, feeds the projection
    /// the stem's last width, and keeps the widths through JSON; configurations written before
    /// the stem existed decode without one, and a width of 0 is refused.
    func testStemConfiguration() throws {
        var configuration = VisionTransformerConfiguration(embedDimension: 8, depth: 1, heads: 2, patchSize: 7, imageSize: 14)
        configuration.stemChannels = [4, 5]
        let model = VisionTransformer(configuration)
        let names = model.namedParameters().map(\.name).filter { $0.hasPrefix("patch_embed.") }
        XCTAssertEqual(
            names.sorted(),
            ["patch_embed.proj.bias", "patch_embed.proj.weight", "patch_embed.stem.0.bias", "patch_embed.stem.0.weight",
             "patch_embed.stem.2.bias", "patch_embed.stem.2.weight"])
        XCTAssertEqual(model.patchEmbed.weight.shape, [8, 5, 7, 7])
        XCTAssertEqual(model(Tensor.zeros([2, 3, 14, 21])).shape, [2, 1 + 6, 8])
        XCTAssertEqual(try JSONDecoder().decode(VisionTransformerConfiguration.self, from: JSONEncoder().encode(configuration)), configuration)
        var object = try JSONSerialization.jsonObject(with: JSONEncoder().encode(configuration)) as! [String: Any]
        object["stemChannels"] = nil
        let withoutStem = try JSONDecoder().decode(VisionTransformerConfiguration.self, from: JSONSerialization.data(withJSONObject: object))
        XCTAssertEqual(withoutStem.stemChannels, [])
        object["stemChannels"] = [4, 0]
        XCTAssertThrowsError(
            try JSONDecoder().decode(VisionTransformerConfiguration.self, from: JSONSerialization.data(withJSONObject: object)))
    }

    /// Loads the fixture's configuration and weights into a new model.
    static func model(from file: HDF5File) throws -> VisionTransformer {
        let configuration = VisionTransformerConfiguration(
            embedDimension: Int(try file.numericAttribute("embed_dim")),
            depth: Int(try file.numericAttribute("depth")),
            heads: Int(try file.numericAttribute("num_heads")),
            patchSize: Int(try file.numericAttribute("patch_size")),
            imageSize: Int(try file.numericAttribute("img_size")))
        XCTAssertEqual(Float(try file.numericAttribute("layer_norm_eps")), configuration.layerNormEpsilon)
        let model = VisionTransformer(configuration)
        var state: [String: Tensor] = [:]
        for key in try file.members(of: "params") { state[key] = try file.readTensor("params/\(key)") }
        try model.load(state)
        return model
    }

    /// Each input size twice: with a recorder, comparing every activation, and without one, the
    /// path training takes (the skip connections added in the output projections' pass); both
    /// compare the output, the loss and every gradient.
    private func checkFixture(_ name: String, inputSizes: [Int]) throws {
        let file = try Fixtures.open(name)
        let model = try Self.model(from: file)
        model.setTraining(false)
        for size in inputSizes {
            for records in [true, false] {
                let group = "forward_\(size)"
                let path = records ? "\(name) \(group), recorded" : "\(name) \(group), as trained"
                let input = try file.readTensor("\(group)/input")
                input.requiresGradient = true
                model.clearGradients()
                let recorder = records ? ActivationRecorder() : nil
                let output = model(input, recorder: recorder)
                if let recorder {
                    for (key, activation) in recorder.activations.sorted(by: { $0.key < $1.key }) {
                        let expected = try file.readTensor("\(group)/\(key)")
                        assertClose(activation, expected, absoluteTolerance: 1e-5, relativeTolerance: 1e-5, "\(path)/\(key)")
                    }
                    XCTAssertEqual(recorder.activations.count, 3 + 10 * model.blocks.count + 1, "every activation compared")
                }
                let products = output * (try file.readTensor("\(group)/loss_weights"))
                let loss = products.sum()
                // The sum cancels heavily; bound its error by the magnitude of what was summed.
                let magnitude = products.elements.reduce(0.0) { $0 + abs(Double($1)) }
                XCTAssertEqual(Double(loss.scalar), try file.readDoubles("\(group)/loss")[0], accuracy: 1e-6 * magnitude, path)
                loss.backward()
                for (key, parameter) in model.namedParameters() {
                    let expected = try file.readTensor("\(group)/grads/\(key)")
                    assertRelativeError(parameter.gradient!, expected, below: 1e-4, "\(path) gradient of \(key)")
                }
                assertRelativeError(
                    input.gradient!, try file.readTensor("\(group)/grads/input_grad"), below: 1e-4, "\(path) input gradient")
            }
        }
    }
}
