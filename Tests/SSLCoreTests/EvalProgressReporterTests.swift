import SSLCore
import XCTest

/// The progress reporter's plain-line format (non-terminal output) and its in-place bar.
final class EvalProgressReporterTests: XCTestCase {
    func testPlainLinesAtTheLogIntervalAndTheLastStep() {
        var output: [String] = []
        var now = 100.0
        let reporter = ProgressReporter(
            title: "train", totalSteps: 100, totalEpochs: 5, style: .lines, logInterval: 10,
            write: { output.append($0) }, clock: { now })
        now = 105
        reporter.update(step: 10, images: 320, epoch: 0, loss: 1.5)
        XCTAssertEqual(output, [], "no line before the interval has passed")
        now = 110
        reporter.update(step: 20, images: 640, epoch: 0, loss: 1.5)
        now = 115
        reporter.update(step: 30, images: 960, epoch: 1, loss: 1.25)
        now = 4000
        reporter.update(step: 100, images: 3200, epoch: 4, loss: 0.123456)
        reporter.finish()
        XCTAssertEqual(output, [
            "train epoch 1/5 step 20/100 (20.0%) 64.0 img/s ETA 0:00:40 loss 1.5000\n",
            "train epoch 5/5 step 100/100 (100.0%) 0.8 img/s ETA 0:00:00 loss 0.1235\n",
        ])
    }

    func testLinesWithoutEpochsOrLoss() {
        var output: [String] = []
        let reporter = ProgressReporter(
            title: "features", totalSteps: 4, style: .lines, write: { output.append($0) }, clock: { 0 })
        reporter.update(step: 4, images: 100)
        XCTAssertEqual(output, ["features step 4/4 (100.0%) – img/s ETA 0:00:00\n"])
    }

    func testBarIsRedrawnInPlaceAndClosedByFinish() {
        var output: [String] = []
        var now = 0.0
        let reporter = ProgressReporter(
            title: "train", totalSteps: 8, totalEpochs: 2, style: .bar, write: { output.append($0) }, clock: { now })
        now = 1
        reporter.update(step: 2, images: 64, epoch: 0, loss: 2)
        now = 1.05
        reporter.update(step: 3, images: 96, epoch: 0, loss: 2)
        now = 4
        reporter.update(step: 8, images: 256, epoch: 1, loss: 1)
        reporter.finish()
        reporter.finish()
        XCTAssertEqual(output.count, 3, "throttled redraw, final draw, one closing newline")
        XCTAssertEqual(output[0], "\r\u{1B}[2Ktrain epoch 1/2 [######------------------] 2/8 25.0% 64.0 img/s ETA 0:00:03 loss 2.0000")
        XCTAssertTrue(output[1].hasPrefix("\r\u{1B}[2Ktrain epoch 2/2 [########################] 8/8 100.0%"))
        XCTAssertEqual(output[2], "\n")
    }
}
