import Foundation
import SSLCore
import XCTest

/// Task weights: constants and schedules of points, as text, as JSON and per iteration.
final class TaskWeightTests: XCTestCase {
    func testConstantsAndSchedulesParseAndPrintBack() throws {
        XCTAssertEqual(try TaskWeight(parsing: "0.1"), 0.1)
        XCTAssertEqual(try TaskWeight(parsing: "0.1").constant, 0.1)
        let schedule = try TaskWeight(parsing: "1@0:0.1@100%")
        XCTAssertNil(schedule.constant)
        XCTAssertEqual(schedule.points, [.init(value: 1, position: .epochs(0)), .init(value: 0.1, position: .fraction(1))])
        XCTAssertEqual(schedule.description, "1@0 epochs:0.1@100%")
        XCTAssertEqual(try TaskWeight(parsing: schedule.description), schedule)
        XCTAssertEqual(try TaskWeight(parsing: "0@0:0.1@500 steps").points.last?.position, .steps(500))
        XCTAssertEqual(try TaskWeight(parsing: "2@0:2@10%").constant, 2, "equal values are a constant")
    }

    func testBadTextsAreRefusedWithTheReason() {
        for text in ["", "x", "1@", "@5", "1@0:", "-1", "1@0:-0.5@10%", "inf", "nan", "1@0:1@ten steps"] {
            XCTAssertThrowsError(try TaskWeight(parsing: text), text) { error in
                XCTAssertTrue("\(error)".contains("weight") || "\(error)".contains("span"), "\(text): \(error)")
            }
        }
    }

    func testJSONKeepsConstantsAsNumbersAndSchedulesAsText() throws {
        let selections = [TaskSelection(name: "dino"), TaskSelection(name: "koleo", weight: try TaskWeight(parsing: "1@0:0.1@100%"))]
        let data = try JSONEncoder().encode(selections)
        let objects = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [[String: Any]])
        XCTAssertEqual(objects[0]["weight"] as? Double, 1)
        XCTAssertEqual(objects[1]["weight"] as? String, "1@0 epochs:0.1@100%")
        XCTAssertEqual(try JSONDecoder().decode([TaskSelection].self, from: data), selections)
        XCTAssertThrowsError(try JSONDecoder().decode(TaskWeight.self, from: Data("\"1@0:-2@5%\"".utf8)))
        XCTAssertThrowsError(try JSONDecoder().decode(TaskWeight.self, from: Data("-2".utf8)))
    }

    func testScheduleIsLinearBetweenPointsAndFlatOutside() throws {
        let weight = try TaskWeight(parsing: "0@10 steps:1@20 steps:0.5@1")
        let schedule = try weight.schedule(epochs: 3, iterationsPerEpoch: 40)
        for (iteration, expected) in [(0, 0.0), (10, 0), (15, 0.5), (20, 1), (30, 0.75), (40, 0.5), (119, 0.5)] {
            XCTAssertEqual(schedule.value(at: iteration), expected, accuracy: 1e-12, "iteration \(iteration)")
        }
        XCTAssertEqual(try TaskWeight(0.3).schedule(epochs: 1, iterationsPerEpoch: 5).value(at: 4), 0.3)
    }

    func testPointsThatGoBackwardsInTheRunAreRefused() throws {
        // 1 epoch is 40 steps in this run, so the second point lies before the first.
        let weight = try TaskWeight(parsing: "1@50 steps:0@1")
        XCTAssertThrowsError(try weight.schedule(epochs: 2, iterationsPerEpoch: 40)) { error in
            XCTAssertTrue("\(error)".contains("backwards"), "\(error)")
        }
        XCTAssertNoThrow(try weight.schedule(epochs: 2, iterationsPerEpoch: 60))
    }
}
