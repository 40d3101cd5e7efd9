import SSLCore
import XCTest

/// `Sequential` numbers its layers as PyTorch's `nn.Sequential` does and applies them in order.
final class SequentialTests: XCTestCase {
    func testLayersAreNumberedWithActivationsCounted() {
        var generator = RandomGenerator(seed: 1)
        let sequential = Sequential([
            .linear(Linear(inputFeatures: 4, outputFeatures: 3, generator: &generator)),
            .batchNorm(BatchNorm1d(features: 3)),
            .relu,
            .linear(Linear(inputFeatures: 3, outputFeatures: 2, bias: false, generator: &generator)),
            .gelu,
            .layerNorm(LayerNorm(features: 2)),
        ])
        XCTAssertEqual(
            sequential.namedParameters().map(\.name),
            ["0.weight", "0.bias", "1.weight", "1.bias", "3.weight", "5.weight", "5.bias"])
        XCTAssertEqual(sequential.namedBuffers().map(\.name).sorted(), ["1.num_batches_tracked", "1.running_mean", "1.running_var"])
    }

    func testOutputIsTheLayersAppliedInOrder() {
        var generator = RandomGenerator(seed: 2)
        let first = Linear(inputFeatures: 4, outputFeatures: 3, generator: &generator)
        let second = Linear(inputFeatures: 3, outputFeatures: 2, generator: &generator)
        let sequential = Sequential([.linear(first), .relu, .linear(second), .gelu])
        let x = Tensor.randomNormal([5, 4], generator: &generator)
        XCTAssertEqual(sequential(x).elements, second(first(x).relu()).gelu().elements)
    }
}
