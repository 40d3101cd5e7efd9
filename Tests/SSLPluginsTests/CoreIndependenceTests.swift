import Foundation
import SSLCore
import SSLPlugins
import XCTest

/// Core knows no plugin: no string literal in `Sources/Core` names a registered task (DINO's
/// multi-crop is Core's default augmentation, so `dino` may appear).
final class CoreIndependenceTests: XCTestCase {
    func testNoStringLiteralInCoreNamesAPluginTask() throws {
        let core = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Sources/Core").standardized
        let names = TaskRegistry.builtIn.names.filter { $0 != "dino" }
        XCTAssertTrue(Set(["selfpatch", "moco", "ibot", "koleo"]).isSubset(of: names))
        let task = try NSRegularExpression(pattern: "\\b(\(names.joined(separator: "|")))\\b", options: .caseInsensitive)
        let literal = try NSRegularExpression(pattern: #""(?:[^"\\]|\\.)*""#)
        var files = 0
        let enumerator = try XCTUnwrap(FileManager.default.enumerator(atPath: core.path))
        for case let path as String in enumerator where path.hasSuffix(".swift") {
            files += 1
            let source = try String(contentsOfFile: core.appendingPathComponent(path).path, encoding: .utf8)
            for (number, line) in source.components(separatedBy: "\n").enumerated() {
                let code = line.trimmingCharacters(in: .whitespaces)
                if code.hasPrefix("//") { continue }
                for match in literal.matches(in: code, range: NSRange(code.startIndex..., in: code)) {
                    let text = String(code[Range(match.range, in: code)!])
                    XCTAssertNil(task.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)),
                                 "Sources/Core/\(path):\(number + 1) names a plugin task: \(text)")
                }
            }
        }
        XCTAssertGreaterThan(files, 50)
    }
}
