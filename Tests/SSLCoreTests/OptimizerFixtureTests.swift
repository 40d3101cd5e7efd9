import Foundation
import SSLCore
import SSLTestSupport
import XCTest

/// Per-parameter clipping, AdamW with DINO's parameter groups, the teacher EMA and the cosine
/// schedules against PyTorch / NumPy (`utils.cosine_scheduler`, `clip_gradients` and the EMA of DINO).
final class OptimizerFixtureTests: XCTestCase {
    private var file: HDF5File!
    private var model: VisionTransformer!
    private var gradients: [String: Tensor] = [:]

    override func setUpWithError() throws {
        file = try Fixtures.open("vit_p4.h5")
        model = try VisionTransformerFixtureTests.model(from: file)
        for (key, _) in model.namedParameters() {
            gradients[key] = try file.readTensor("forward_32/grads/\(key)")
        }
    }

    private func installGradients() {
        for (key, parameter) in model.namedParameters() { parameter.gradient = gradients[key]!.copy() }
    }

    func testDINOParameterGroupsExemptBiasesAndOneDimensionalTensors() throws {
        let groups = ParameterGroup.dinoGroups(model.namedParameters())
        let expected = Set(try file.readStrings("optimizer/no_decay_keys"))
        XCTAssertEqual(Set(groups[1].parameters.map(\.name)), expected)
        XCTAssertTrue(groups[0].parameters.contains { $0.name == "cls_token" }, "cls_token is decayed")
        XCTAssertTrue(groups[0].parameters.contains { $0.name == "pos_embed" }, "pos_embed is decayed")
        XCTAssertEqual(groups[0].parameters.count + groups[1].parameters.count, model.namedParameters().count)
    }

    /// MAE's `param_groups_lrd` (`util/lr_decay.py`) on a ViT of depth d: the patch embedding,
    /// positions and class token learn at decay^(d+1), block i at decay^(d−i), the rest at 1;
    /// each weight-decay group is split, never merged.
    func testLayerDecayScalesEachLayersLearningRate() throws {
        let depth = model.configuration.depth
        let student = model.namedParameters().map { (name: "backbone.\($0.name)", tensor: $0.tensor) }
            + [(name: "dino.head.mlp.0.weight", tensor: Tensor.zeros([2, 2])), (name: "dino.head.mlp.0.bias", tensor: Tensor.zeros([2]))]
        for parameter in student { parameter.tensor.requiresGradient = true }
        let decay = 0.5
        let groups = ParameterGroup.layerDecayed(ParameterGroup.dinoGroups(student), decay: decay, depth: depth)
        var multipliers: [String: (learningRate: Double, weightDecay: Double)] = [:]
        for group in groups {
            for parameter in group.parameters {
                XCTAssertNil(multipliers[parameter.name], "\(parameter.name) in two groups")
                multipliers[parameter.name] = (group.learningRateMultiplier, group.weightDecayMultiplier)
            }
        }
        XCTAssertEqual(multipliers.count, student.count)
        func expected(_ name: String) -> Double {
            if name.hasPrefix("backbone.patch_embed") || name == "backbone.cls_token" || name == "backbone.pos_embed" {
                return pow(decay, Double(depth + 1))
            }
            for block in 0..<depth where name.hasPrefix("backbone.blocks.\(block).") { return pow(decay, Double(depth - block)) }
            return 1
        }
        for parameter in student {
            let (learningRate, weightDecay) = try XCTUnwrap(multipliers[parameter.name])
            XCTAssertEqual(learningRate, expected(parameter.name), accuracy: 1e-15, parameter.name)
            let exempt = parameter.name.hasSuffix(".bias") || parameter.tensor.rank == 1
            XCTAssertEqual(weightDecay, exempt ? 0 : 1, parameter.name)
        }
        XCTAssertEqual(multipliers["backbone.blocks.\(depth - 1).attn.qkv.weight"]?.learningRate, decay)
        XCTAssertEqual(multipliers["backbone.norm.weight"]?.learningRate, 1)
    }

    /// A group's learning-rate multiplier is exactly a smaller learning rate for its parameters.
    func testAGroupsLearningRateMultiplierEqualsASmallerRate() {
        func stepped(learningRate: Double, multiplier: Double) -> [Float] {
            let parameter = Tensor(shape: [3], elements: [0.5, -1, 2])
            parameter.requiresGradient = true
            parameter.gradient = Tensor(shape: [3], elements: [0.3, 0.1, -0.2])
            let optimizer = AdamW(
                groups: [ParameterGroup(parameters: [("p", parameter)], learningRateMultiplier: multiplier)],
                learningRate: learningRate, weightDecay: 0.1)
            optimizer.step()
            return parameter.elements
        }
        XCTAssertEqual(stepped(learningRate: 0.01, multiplier: 0.25), stepped(learningRate: 0.0025, multiplier: 1))
        XCTAssertNotEqual(stepped(learningRate: 0.01, multiplier: 0.25), stepped(learningRate: 0.01, multiplier: 1))
    }

    /// Configurations written before layer decay existed decode with it off; a set value survives.
    func testLayerDecayDecodesWhenAbsentAndRoundTrips() throws {
        var optimization = OptimizationConfiguration()
        optimization.layerDecay = 0.65
        let encoded = try JSONEncoder().encode(optimization)
        XCTAssertEqual(try JSONDecoder().decode(OptimizationConfiguration.self, from: encoded), optimization)
        var fields = try XCTUnwrap(JSONSerialization.jsonObject(with: encoded) as? [String: Any])
        XCTAssertNotNil(fields.removeValue(forKey: "layerDecay"))
        let older = try JSONDecoder().decode(OptimizationConfiguration.self, from: JSONSerialization.data(withJSONObject: fields))
        XCTAssertEqual(older.layerDecay, 1)
        optimization.layerDecay = 0
        XCTAssertThrowsError(try optimization.validate()) { XCTAssertTrue("\($0)".contains("--layer-decay"), "\($0)") }
    }

    func testPerParameterClipping() throws {
        installGradients()
        let maximumNorm = try file.numericAttribute("clip_norm", of: "optimizer")
        GradientClipping.clipPerParameter(model.namedParameters(), maximumNorm: maximumNorm)
        for (key, parameter) in model.namedParameters() {
            assertClose(parameter.gradient!, try file.readTensor("optimizer/clipped/\(key)"),
                        absoluteTolerance: 1e-9, relativeTolerance: 1e-6, "clipped \(key)")
        }
    }

    func testClippingLeavesSmallGradientsUnchanged() {
        let parameter = Tensor.zeros([3])
        parameter.gradient = Tensor(shape: [3], elements: [0.1, -0.2, 0.2])
        GradientClipping.clipPerParameter([("p", parameter)], maximumNorm: 3)
        XCTAssertEqual(parameter.gradient!.elements, [0.1, -0.2, 0.2])
    }

    func testTwoAdamWStepsAndTheirMoments() throws {
        let optimizer = AdamW(
            groups: ParameterGroup.dinoGroups(model.namedParameters()),
            learningRate: try file.numericAttribute("lr", of: "optimizer"),
            weightDecay: try file.numericAttribute("weight_decay", of: "optimizer"),
            beta1: try file.numericAttribute("beta1", of: "optimizer"),
            beta2: try file.numericAttribute("beta2", of: "optimizer"),
            epsilon: try file.numericAttribute("eps", of: "optimizer"))
        for step in 1...2 {
            installGradients()
            optimizer.step()
            for (key, parameter) in model.namedParameters() {
                // One float32 rounding of a value near 1 is 6e-8; PyTorch itself is 1e-7 away
                // from the double-precision formula.
                assertClose(parameter, try file.readTensor("optimizer/step\(step)/\(key)"),
                            absoluteTolerance: 2.5e-7, "step \(step) \(key)")
            }
        }
        for (key, _) in model.namedParameters() {
            let state = try XCTUnwrap(optimizer.state[key])
            XCTAssertEqual(state.step, 2)
            assertClose(state.firstMoment, try file.readTensor("optimizer/exp_avg/\(key)"),
                        absoluteTolerance: 1e-9, relativeTolerance: 1e-6, "exp_avg \(key)")
            assertClose(state.secondMoment, try file.readTensor("optimizer/exp_avg_sq/\(key)"),
                        absoluteTolerance: 1e-12, relativeTolerance: 1e-6, "exp_avg_sq \(key)")
        }
    }

    func testAdamWSkipsParametersWithoutGradient() {
        let frozen = Tensor(shape: [2, 2], elements: [1, 2, 3, 4])
        frozen.requiresGradient = true
        let optimizer = AdamW(groups: [ParameterGroup(parameters: [("last_layer.weight_v", frozen)])],
                              learningRate: 0.1, weightDecay: 0.5)
        optimizer.step()
        XCTAssertEqual(frozen.elements, [1, 2, 3, 4], "no decay and no update without a gradient")
        XCTAssertNil(optimizer.state["last_layer.weight_v"], "no moments created")
    }

    func testTeacherExponentialMovingAverage() throws {
        let teacher = try VisionTransformerFixtureTests.model(from: file)
        let optimizer = AdamW(
            groups: ParameterGroup.dinoGroups(model.namedParameters()),
            learningRate: try file.numericAttribute("lr", of: "optimizer"),
            weightDecay: try file.numericAttribute("weight_decay", of: "optimizer"))
        installGradients()
        optimizer.step()
        let momentum = try file.numericAttribute("ema_momentum", of: "optimizer")
        ExponentialMovingAverage.update(teacher: teacher, student: model, momentum: momentum)
        for (key, parameter) in teacher.namedParameters() {
            assertClose(parameter, try file.readTensor("optimizer/ema/\(key)"), absoluteTolerance: 1e-7, "ema \(key)")
        }
    }
}

final class ScheduleTests: XCTestCase {
    func testCosineSchedulesMatchDINOBitForBit() throws {
        let file = try Fixtures.open("schedules.h5")
        for name in ["lr", "momentum", "lr_big", "wd_big"] {
            let schedule = CosineSchedule(
                base: try file.numericAttribute("base", of: name),
                final: try file.numericAttribute("final", of: name),
                epochs: Int(try file.numericAttribute("epochs", of: name)),
                iterationsPerEpoch: Int(try file.numericAttribute("niter_per_ep", of: name)),
                warmupEpochs: Int(try file.numericAttribute("warmup_epochs", of: name)),
                start: try file.numericAttribute("start_warmup_value", of: name))
            let expected = try file.readDoubles(name)
            XCTAssertEqual(schedule.count, expected.count, name)
            for (index, value) in expected.enumerated() {
                XCTAssertEqual(schedule.value(at: index), value, accuracy: 1e-12, "\(name)[\(index)]")
            }
        }
    }

    func testGoldenValuesOfTheSpecification() {
        let warmup = CosineSchedule(base: 1, final: 0, epochs: 3, iterationsPerEpoch: 4, warmupEpochs: 1)
        let golden = [0, 0.333333, 0.666667, 1, 1, 0.96194, 0.853553, 0.691342, 0.5, 0.308658, 0.146447, 0.03806]
        for (computed, expected) in zip(warmup.values, golden) { XCTAssertEqual(computed, expected, accuracy: 1e-6) }
    }

    func testTeacherTemperatureWarmup() throws {
        let file = try Fixtures.open("schedules.h5")
        let expected = try file.readDoubles("teacher_temp")
        let iterationsPerEpoch = 3
        let schedule = LinearWarmupSchedule(
            start: 0.04, final: 0.07, span: .epochs(30), epochs: expected.count, iterationsPerEpoch: iterationsPerEpoch)
        for (epoch, value) in expected.enumerated() {
            for step in 0..<iterationsPerEpoch {
                XCTAssertEqual(schedule.value(at: epoch * iterationsPerEpoch + step), value, accuracy: 1e-12, "epoch \(epoch)")
            }
        }
        XCTAssertEqual(schedule.value(at: iterationsPerEpoch), 0.041034, accuracy: 1e-6)
    }
}
