import SSLCore
import SSLPlugins
import XCTest

/// Every option of a task has one line of help and every line of help names an option: the
/// registry refuses a plugin whose two lists disagree.
final class TaskOptionHelpTests: XCTestCase {
    private struct MisdocumentedConfiguration: TaskConfiguration {
        var dim = 8
        var temperature = 0.1
        static let help = ["dim": "Output width.", "temprature": "A misspelt key."]
    }

    func testAMismatchNamesBothSides() throws {
        let mismatch = try XCTUnwrap(TaskOptionCoding.helpMismatch(of: MisdocumentedConfiguration.self))
        XCTAssertTrue(mismatch.contains("without help: [\"temperature\"]"), mismatch)
        XCTAssertTrue(mismatch.contains("help for no option: [\"temprature\"]"), mismatch)
    }

    func testEveryBuiltInTaskDocumentsExactlyItsOptions() throws {
        for entry in TaskRegistry.builtIn.entries {
            XCTAssertFalse(entry.defaults.contains { $0.help.isEmpty }, "\(entry.name) has an option without help")
        }
        XCTAssertNil(TaskOptionCoding.helpMismatch(of: DINOTask.Configuration.self))
    }
}
