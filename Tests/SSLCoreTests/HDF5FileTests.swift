import Foundation
import SSLCore
import SSLTestSupport
import XCTest

/// Reading and writing HDF5: the layer under fixtures and checkpoints.
final class HDF5FileTests: XCTestCase {
    func testArrayAttributeIsRejectedNotOverflowed() throws {
        let file = try Fixtures.open("vit_p16.h5")
        XCTAssertThrowsError(try file.numericAttribute("input_sizes")) { error in
            XCTAssertTrue("\(error)".contains("holds 2 values"), "\(error)")
        }
    }

    func testRoundTripOfTensorsIntegersStringsAndAttributes() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("roundtrip-\(getpid()).h5").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let tensor = Tensor(shape: [2, 3], elements: [1, 2, 3, 4, 5, 6])
        do {
            let file = try HDF5File(path: path, mode: .create)
            try file.write(tensor, at: "group/sub/blocks.0.attn.qkv.weight")
            try file.write(integers: [3, -1, 7], at: "cursor")
            try file.setAttribute("epoch", 12)
            try file.setAttribute("config", "{\"a\": 1}", of: "group")
        }
        let file = try HDF5File(path: path)
        XCTAssertEqual(try file.readTensor("group/sub/blocks.0.attn.qkv.weight").elements, tensor.elements)
        XCTAssertEqual(try file.shape(of: "group/sub/blocks.0.attn.qkv.weight"), [2, 3])
        XCTAssertEqual(try file.readIntegers("cursor"), [3, -1, 7])
        XCTAssertEqual(try file.numericAttribute("epoch"), 12)
        XCTAssertEqual(try file.stringAttribute("config", of: "group"), "{\"a\": 1}")
        XCTAssertEqual(try file.members(of: "group/sub"), ["blocks.0.attn.qkv.weight"])
        XCTAssertThrowsError(try file.readTensor("missing")) { error in
            XCTAssertTrue("\(error)".contains("missing"), "\(error)")
        }
    }

    func testMissingFileIsReportedByPath() {
        XCTAssertThrowsError(try HDF5File(path: "/nonexistent/run/checkpoint.h5")) { error in
            XCTAssertTrue("\(error)".contains("/nonexistent/run/checkpoint.h5"), "\(error)")
        }
    }
}

final class HDF5StringTests: XCTestCase {
    /// Fixed-length strings written without a terminating NUL (h5py's `S` type) keep their last
    /// character; the fixtures' `no_decay_keys` are such strings.
    func testStringsWithoutTerminatorAreReadWhole() throws {
        let keys = try Fixtures.open("vit_p4.h5").readStrings("optimizer/no_decay_keys")
        XCTAssertTrue(keys.contains("norm.bias"), "\(keys)")
        XCTAssertTrue(keys.allSatisfy { $0.hasSuffix(".bias") || $0.hasSuffix(".weight") }, "\(keys)")
        let version = try Fixtures.open("vit_p4.h5").stringAttribute("torch_version")
        XCTAssertTrue(version.hasPrefix("2.15.0"), version)
    }
}
