import SSLCore
import SSLTestSupport
import XCTest

/// DINO's weighted k-NN against `Tests/Fixtures/knn.h5` (tools/reference/make_knn_fixture.py,
/// spec §6.3 item 19) and the neighbour search it rests on.
final class EvalNeighborTests: XCTestCase {
    func testTop1AndTop5MatchDINOProtocolFixture() throws {
        let file = try Fixtures.open("knn.h5")
        let classifier = KNearestNeighborClassifier(
            classCount: Int(try file.numericAttribute("num_classes")), neighborCounts: [10, 20],
            temperature: Float(try file.numericAttribute("temperature")))
        let result = classifier.evaluate(
            trainFeatures: try file.readTensor("train_features"), trainLabels: try file.readIntegers("train_labels"),
            testFeatures: try file.readTensor("test_features"), testLabels: try file.readIntegers("test_labels"))
        XCTAssertEqual(result.accuracies.map(\.neighborCount), [10, 20])
        for k in [10, 20] {
            let accuracy = try XCTUnwrap(result.accuracy(neighborCount: k))
            XCTAssertEqual(accuracy.top1Correct, try file.readIntegers("k\(k)/top1_correct")[0], "top-1 correct, k \(k)")
            XCTAssertEqual(accuracy.top5Correct, try file.readIntegers("k\(k)/top5_correct")[0], "top-5 correct, k \(k)")
            XCTAssertEqual(accuracy.top1 * 100, try file.readDoubles("k\(k)/top1")[0], accuracy: 1e-9)
            XCTAssertEqual(accuracy.top5 * 100, try file.readDoubles("k\(k)/top5")[0], accuracy: 1e-9)
            XCTAssertEqual(accuracy.total, 200)
        }
    }

    func testNeighboursAndClassScoresMatchFixture() throws {
        let file = try Fixtures.open("knn.h5")
        let trainLabels = try file.readIntegers("train_labels")
        let search = CosineNeighborSearch(references: try file.readTensor("train_features"))
        let expected = try file.readIntegers("k20/neighbors")
        let expectedScores = try file.readTensor("k20/class_scores").elements
        var indices: [Int] = [], scores: [Float] = []
        search.forEachChunk(of: try file.readTensor("test_features"), neighborCount: 20) { chunk in
            indices += chunk.indices
            for row in 0..<chunk.queries.count {
                var rowScores = [Float](repeating: 0, count: 10)
                for position in (row * 20)..<((row + 1) * 20) {
                    rowScores[trainLabels[chunk.indices[position]]] += expf(chunk.similarities[position] / 0.07)
                }
                scores += rowScores
            }
        }
        XCTAssertEqual(indices, expected)
        assertClose(
            Tensor(shape: [200, 10], elements: scores), Tensor(shape: [200, 10], elements: expectedScores),
            absoluteTolerance: 1e-6, relativeTolerance: 1e-4, "class scores")
    }

    func testChunkingDoesNotChangeNeighbours() throws {
        let (train, _) = EvalSyntheticData.clusters(classCount: 3, perClass: 20, dimension: 8, seed: 1)
        let (test, _) = EvalSyntheticData.clusters(classCount: 3, perClass: 7, dimension: 8, seed: 2)
        func neighbours(_ search: CosineNeighborSearch) -> (indices: [Int], chunks: Int) {
            var indices: [Int] = [], chunks = 0
            search.forEachChunk(of: test, neighborCount: 5) { chunk in
                indices += chunk.indices
                chunks += 1
            }
            return (indices, chunks)
        }
        let whole = neighbours(CosineNeighborSearch(references: train))
        let split = neighbours(CosineNeighborSearch(references: train, maximumChunkElements: 2 * 60))
        XCTAssertEqual(whole.chunks, 1)
        XCTAssertEqual(split.chunks, 11, "21 queries in chunks of 2")
        XCTAssertEqual(split.indices, whole.indices)
    }

    func testEqualSimilaritiesKeepTheLowerIndexFirst() {
        let references = Tensor(shape: [4, 2], elements: [0, 1, 1, 0, 2, 0, 1, 1])
        var found: [Int] = []
        CosineNeighborSearch(references: references).forEachChunk(of: Tensor(shape: [1, 2], elements: [3, 0]), neighborCount: 3) {
            found = $0.indices
        }
        XCTAssertEqual(found, [1, 2, 3])
    }

    func testAnyTestSetSizeAndNeighbourCountsClampedToTrainSet() {
        let (train, trainLabels) = EvalSyntheticData.clusters(classCount: 2, perClass: 3, dimension: 4, seed: 3)
        let (test, testLabels) = EvalSyntheticData.clusters(classCount: 2, perClass: 1, dimension: 4, seed: 4)
        let classifier = KNearestNeighborClassifier(classCount: 2)
        XCTAssertEqual(classifier.effectiveNeighborCounts(trainCount: 6), [6])
        let result = classifier.evaluate(trainFeatures: train, trainLabels: trainLabels, testFeatures: test, testLabels: testLabels)
        XCTAssertEqual(result.accuracies.count, 1)
        XCTAssertEqual(result.best.neighborCount, 6)
        XCTAssertEqual(result.best.total, 2)
        XCTAssertEqual(result.best.top5, 1, "two classes always fall within the top 5")
        let single = classifier.evaluate(
            trainFeatures: train, trainLabels: trainLabels, testFeatures: test.sliced(0..<1, axis: 0), testLabels: [testLabels[0]])
        XCTAssertEqual(single.best.total, 1)
        XCTAssertEqual(result.metrics()["knn/top1@6"], result.best.top1)
    }

    func testSeparableClustersAreClassifiedPerfectly() {
        let (train, trainLabels) = EvalSyntheticData.clusters(classCount: 5, perClass: 40, dimension: 16, seed: 5)
        let (test, testLabels) = EvalSyntheticData.clusters(classCount: 5, perClass: 20, dimension: 16, seed: 6)
        let result = KNearestNeighborClassifier(classCount: 5, neighborCounts: [10, 20])
            .evaluate(trainFeatures: train, trainLabels: trainLabels, testFeatures: test, testLabels: testLabels)
        for accuracy in result.accuracies { XCTAssertEqual(accuracy.top1, 1) }
    }
}
