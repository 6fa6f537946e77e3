import Foundation
import GraftCore
import GraftTestSupport
@testable import GraftTorch
import XCTest

final class SafetensorsTests: XCTestCase {
    // MARK: - Round trips

    func testRoundTripKeepsOrderValuesAndMetadata() throws {
        let dir = try TemporaryDirectory()
        // Graft keeps float16 and float64 as float32, so the round trip leaves them out.
        var dict = StateDict(entries: mixedStateDict().entries.filter { ![.float16, .float64].contains($0.tensor.dtype) },
                             metadata: ["format": "pt", "quote\"d": "line\nbreak \u{01} ünï"])
        // Not sorted in any way the writer could fall back on.
        var generator = SeededGenerator(seed: 3)
        dict.entries.shuffle(using: &generator)
        try Safetensors.write(dict, to: dir.file("mixed.safetensors"), metadata: ["graft": "1"])
        let read = try Safetensors.read(at: dir.file("mixed.safetensors"))
        XCTAssertEqual(read.entries.map(\.key), dict.entries.map(\.key))
        for (a, b) in zip(read.entries, dict.entries) { XCTAssertEqual(a.tensor, b.tensor, a.key) }
        XCTAssertEqual(read.metadata, dict.metadata.merging(["graft": "1"]) { $1 })
    }

    func testAlignedTensorsBorrowTheFileAndUnalignedOnesAreCopied() throws {
        let dir = try TemporaryDirectory()
        let dict = StateDict(entries: [
            .init(key: "a", tensor: Tensor(shape: [2], floats: [1, 2])),
            .init(key: "odd", tensor: Tensor(shape: [3], int64s: [1, 2, 3]).converted(to: .uint8)),
            .init(key: "b", tensor: Tensor(shape: [2], floats: [3, 4])),
        ])
        try Safetensors.write(dict, to: dir.file("x.safetensors"))
        let read = try Safetensors.read(at: dir.file("x.safetensors"))
        XCTAssertEqual(read.entries.map(\.tensor.isMemoryMapped), [true, true, false])
        XCTAssertEqual(read["b"]?.floats, [3, 4])
    }

    func testHeaderIsPaddedWithSpacesToEightBytes() throws {
        let data = try Safetensors.encode(StateDict(entries: [.init(key: "w", tensor: Tensor(scalar: 1))]), metadata: [:])
        let header = #"{"w":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}"#
        let padded = header + String(repeating: " ", count: (8 - header.utf8.count % 8) % 8)
        XCTAssertEqual(data.littleEndian32(at: 0), UInt32(padded.utf8.count))
        XCTAssertEqual(String(decoding: data[8..<(8 + padded.utf8.count)], as: UTF8.self), padded)
        XCTAssertEqual(data.count, 8 + padded.utf8.count + 4)
    }

    // MARK: - Files of the reference writer, and files the reference reads

    func testReadsEveryDtypeTheReferenceWrote() throws {
        let dict = try Safetensors.read(at: Fixtures.path("safetensors/dtypes.safetensors"))
        // The reference writer orders tensors by type, then name.
        XCTAssertEqual(dict.entries.map(\.key), ["i64", "i64_scalar", "f64", "empty", "f32", "bf16", "f16"])
        for entry in dict.entries {
            let expected = try NPY.read(Fixtures.path("safetensors/dtypes/\(entry.key).npy"))
            XCTAssertEqual(entry.tensor, expected, entry.key)
        }
        XCTAssertEqual(dict.metadata, ["format": "pt", "note": "ünïcode \"quoted\"\n\ttabbed"])
    }

    func testSafetensorsLoadsWhatGraftWrote() throws {
        let dir = try TemporaryDirectory()
        let dict = mixedStateDict()
        try writeReference(dict, to: dir.file("reference"))
        try Safetensors.write(dict, to: dir.file("mixed.safetensors"), metadata: ["format": "pt"])
        try TorchPython.run("check_torch_state_dict.py", [dir.file("mixed.safetensors"), "--reference", dir.file("reference")])
    }

    func testResNetRoundTripLoadsIntoTorchvision() throws {
        let dir = try TemporaryDirectory()
        let fixture = Fixtures.path("safetensors/resnet_tiny.safetensors")
        let dict = try Safetensors.read(at: fixture)
        XCTAssertEqual(dict.metadata, ["format": "pt"])
        try Safetensors.write(dict, to: dir.file("resnet_tiny.safetensors"))
        try TorchPython.run("check_torch_state_dict.py", [dir.file("resnet_tiny.safetensors"), "--reference", fixture,
                                                          "--torchvision-arch", tinyResNetRecipe])
    }

    // MARK: - Hostile files

    /// A file of `header` (its length `length`, or its own) followed by `data` bytes.
    private func file(_ header: String, length: UInt64? = nil, data: Int = 0, in dir: TemporaryDirectory) throws -> String {
        var bytes = Data()
        let length = length ?? UInt64(header.utf8.count)
        for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(truncatingIfNeeded: length >> UInt64(shift))) }
        bytes.append(contentsOf: Array(header.utf8))
        bytes.append(contentsOf: (0..<data).map { UInt8(truncatingIfNeeded: $0) })
        let path = dir.file("bad.safetensors")
        try bytes.write(to: URL(fileURLWithPath: path))
        return path
    }

    private func assertRefused(_ header: String, length: UInt64? = nil, data: Int = 0, _ message: String, line: UInt = #line) throws {
        let dir = try TemporaryDirectory()
        let path = try file(header, length: length, data: data, in: dir)
        XCTAssertThrowsError(try Safetensors.read(at: path), line: line) { error in
            XCTAssertEqual("\(error)", "\(path): \(message)", line: line)
        }
    }

    func testTooShortForTheHeaderLength() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("short.safetensors")
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try Safetensors.read(at: path)) { error in
            XCTAssertEqual("\(error)", "\(path): not a safetensors file: 3 bytes, fewer than the 8 of the header length")
        }
    }

    func testHeaderLengthPastTheFile() throws {
        try assertRefused("{}", length: 1000, "header length 1000 runs past the end of the file (10 bytes)")
    }

    func testHugeHeaderLength() throws {
        try assertRefused("{}", length: .max, "header length 18446744073709551615 is over the 100000000-byte limit")
        try assertRefused("{}", length: 100_000_001, "header length 100000001 is over the 100000000-byte limit")
    }

    func testBadJSON() throws {
        try assertRefused(#"{"a": {"dtype": "F32",}"#, "the header is not valid JSON: expected a quoted member name at byte 22")
        try assertRefused(#"{"a": 1} x"#, "the header is not valid JSON: unexpected text after the JSON value at byte 9")
        try assertRefused(#"{"a": tru}"#, "the header is not valid JSON: unexpected 't' at byte 6")
        try assertRefused(#"{"a": 01}"#, "the header is not valid JSON: a malformed number at byte 6")
        try assertRefused(#"{"\ud800": 1}"#, "the header is not valid JSON: a lone surrogate escape at byte 8")
        try assertRefused(String(repeating: "[", count: 40), "the header is not valid JSON: nested deeper than 32 levels at byte 32")
        try assertRefused("[1]", "the header is not a JSON object")
    }

    func testUnknownDtype() throws {
        try assertRefused(#"{"w": {"dtype": "Q4", "shape": [1], "data_offsets": [0, 1]}}"#, data: 1,
                          "tensor 'w': dtype \"Q4\" is not supported (Graft reads F32, F16, BF16, F64, I64, I32, I8, U8, BOOL)")
        try assertRefused(#"{"w": {"dtype": "F8_E4M3", "shape": [1], "data_offsets": [0, 1]}}"#, data: 1,
                          "tensor 'w': dtype \"F8_E4M3\" is not supported (Graft reads F32, F16, BF16, F64, I64, I32, I8, U8, BOOL)")
        try assertRefused(#"{"w": {"shape": [1], "data_offsets": [0, 4]}}"#, data: 4, "tensor 'w': has no dtype")
    }

    func testOffsetsPastTheEnd() throws {
        try assertRefused(#"{"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}"#, data: 8,
                          "tensor 'w': data_offsets [0, 16] run past the end of the data (8 bytes)")
    }

    func testOverlappingOffsets() throws {
        try assertRefused(#"{"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}"#,
                          data: 16, "tensor 'b': data_offsets [8, 16] overlap those of tensor 'a' [0, 16]")
        try assertRefused(#"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "e": {"dtype": "F32", "shape": [0], "data_offsets": [4, 4]}}"#,
                          data: 8, "tensor 'e': data_offsets [4, 4] overlap those of tensor 'a' [0, 8]")
    }

    func testGapsAndUnusedBytes() throws {
        try assertRefused(#"{"b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}"#, data: 8,
                          "tensor 'b': bytes 0..<4 of the data before it belong to no tensor")
        try assertRefused(#"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}"#, data: 12,
                          "bytes 4..<12 at the end of the data belong to no tensor")
    }

    func testShapeThatIsNotTheByteSpan() throws {
        try assertRefused(#"{"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 20]}}"#, data: 20,
                          "tensor 'w': shape [2, 3] of F32 takes 24 bytes but data_offsets [0, 20] hold 20")
        try assertRefused(#"{"w": {"dtype": "BF16", "shape": [3], "data_offsets": [8, 2]}}"#, data: 8,
                          "tensor 'w': data_offsets [8, 2] end before they begin")
        try assertRefused(#"{"w": {"dtype": "I64", "shape": [1], "data_offsets": [0]}}"#, data: 8,
                          "tensor 'w': data_offsets [0] are not two non-negative integers")
    }

    func testNegativeOrEnormousDimensions() throws {
        try assertRefused(#"{"w": {"dtype": "F32", "shape": [2, -1], "data_offsets": [0, 0]}}"#,
                          "tensor 'w': shape [2, -1] is not a list of non-negative integers")
        try assertRefused(#"{"w": {"dtype": "F32", "shape": [99999999999999999999], "data_offsets": [0, 0]}}"#,
                          "tensor 'w': shape [99999999999999999999] is not a list of non-negative integers")
        try assertRefused(#"{"w": {"dtype": "F32", "shape": [1e3, 2.5], "data_offsets": [0, 0]}}"#,
                          "tensor 'w': shape [1e3, 2.5] is not a list of non-negative integers")
        try assertRefused(#"{"w": {"dtype": "F32", "shape": [4611686018427387904, 4], "data_offsets": [0, 0]}}"#,
                          "tensor 'w': shape [4611686018427387904, 4] of F32 is too large")
        try assertRefused(#"{"w": {"dtype": "U8", "shape": [0, 4611686018427387904, 4], "data_offsets": [0, 0]}}"#,
                          "tensor 'w': shape [0, 4611686018427387904, 4] of U8 is too large")
    }

    func testDuplicatesAndMetadataThatIsNotText() throws {
        try assertRefused(#"{"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}, "a": {"dtype": "U8", "shape": [1], "data_offsets": [1, 2]}}"#,
                          data: 2, "tensor 'a': appears twice in the header")
        try assertRefused(#"{"__metadata__": {"epoch": 3}}"#, "__metadata__ 'epoch' is not a string: 3")
        try assertRefused(#"{"__metadata__": ["a\nb"]}"#, #"__metadata__ is not an object of strings: ["a\nb"]"#)
    }

    func testWritingRefusesTheMetadataKeyAndDuplicates() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("x.safetensors")
        let reserved = StateDict(entries: [.init(key: "__metadata__", tensor: Tensor(scalar: 1))])
        XCTAssertThrowsError(try Safetensors.write(reserved, to: path)) { error in
            XCTAssertEqual("\(error)", "\(path): tensor '__metadata__': is the name safetensors keeps for metadata")
        }
        let twice = StateDict(entries: [.init(key: "a", tensor: Tensor(scalar: 1)), .init(key: "a", tensor: Tensor(scalar: 1))])
        XCTAssertThrowsError(try Safetensors.write(twice, to: path)) { error in
            XCTAssertEqual("\(error)", "\(path): tensor 'a': appears twice in the state_dict")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path))
    }
}
