import Foundation
import GraftTestSupport
import XCTest

/// The bad-input corpus through the `graft` binary, as a user meets it: each file gives exactly
/// one line on stderr naming the file, the place and the problem, nothing on stdout, and exit
/// status 1; nothing outside the model's folder is read, nothing is half-written.
final class SafetyTests: XCTestCase {
    let input = Fixtures.tiny("input_b1.npy")

    func bad(_ name: String) -> String { Fixtures.path("bad/\(name)") }

    /// Runs `graft infer model --input input` and expects `message` about `file` (the model by default).
    func expectError(_ model: String, input: String? = nil, about file: String? = nil, _ message: String,
                     sourceFile: StaticString = #filePath, line: UInt = #line) throws {
        let result = try GraftProcess.run(["infer", model, "--input", input ?? self.input])
        XCTAssertEqual(result.status, 1, file: sourceFile, line: line)
        XCTAssertEqual(result.stderr, "graft: error: \(file ?? model): \(message)\n", file: sourceFile, line: line)
        XCTAssertEqual(result.stdout, "", file: sourceFile, line: line)
    }

    func testONNXCorpus() throws {
        let cases: [(String, String)] = [
            ("missing_opset.onnx", "the model imports no opset of the default ONNX domain"),
            ("opset_zero.onnx", "opset 0 is not supported (Graft reads opsets 1 to 23)"),
            ("negative_dims.onnx", "tensor 'w': negative dimension -4 in [1, -4]"),
            ("huge_dims.onnx", "tensor 'w': dimensions [1099511627776, 1099511627776] are too large"),
            ("dims_past_raw_data.onnx", "tensor 'w': raw_data holds 16 bytes; float32 [65536, 65536] needs 17179869184"),
            ("long_raw_data.onnx", "tensor 'w': raw_data holds 20 bytes; float32 [1, 4] needs 16"),
            ("huge_input.onnx", "tensor 'x': the declared shape [1048576, 1048576] of float32 is larger than Graft's limit of 4 GiB per tensor"),
            ("absolute_external_data.onnx", "tensor 'w': external data location '/etc/passwd' escapes the model's folder"),
            ("missing_external_data.onnx", "tensor 'w': external data file 'missing.bin' is missing (No such file or directory)"),
            ("short_external_data.onnx", "tensor 'w': external data needs bytes 0..<16 but 'weights.bin' has 8"),
            ("external_offset_past_end.onnx", "tensor 'w': external data needs bytes 1099511627776..<1099511627792 but 'weights.bin' has 8"),
            ("external_length_mismatch.onnx", "tensor 'w': external data length 8 does not match float32 [1, 4] (16 bytes)"),
            ("external_dims_past_file.onnx", "tensor 'w': external data needs bytes 0..<17179869184 but 'weights.bin' has 8"),
            ("huge_constant_of_shape.onnx",
             "node 'fill' (ConstantOfShape): the output [1048576, 1048576] of float32 is larger than Graft's limit of 4 GiB per tensor"),
            ("huge_pad.onnx", "node 'pad' (Pad): the output [1, 1099511627780] of float32 is larger than Graft's limit of 4 GiB per tensor"),
            ("huge_conv_pads.onnx",
             "node 'conv' (Conv): the output [1, 1, 2147483652, 2147483652] of float32 is larger than Graft's limit of 4 GiB per tensor"),
            ("huge_reshape.onnx", "node 'reshape' (Reshape): cannot reshape [1, 4] (4 elements) to [1099511627776, 1099511627776]"),
        ]
        for (name, message) in cases { try expectError(bad(name), message) }
    }

    func testTheSameErrorsFromEveryCommand() throws {
        for arguments in [["summary"], ["convert", "--report"], ["bench", "--runs", "1"]] {
            let model = bad("huge_constant_of_shape.onnx")
            let output = try TemporaryDirectory()
            let result = try GraftProcess.run([arguments[0], model] + (arguments[0] == "convert" ? [output.file("out.onnx")] : []) + arguments.dropFirst())
            XCTAssertEqual(result.status, 1, "\(arguments)")
            XCTAssertEqual(result.stderr, "graft: error: \(model): node 'fill' (ConstantOfShape): the output [1048576, 1048576] of float32 is larger than Graft's limit of 4 GiB per tensor\n", "\(arguments)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: output.file("out.onnx")), "nothing is written on failure")
        }
    }

    func testDeeplyNestedGraphsAreRefusedBeforeParsing() throws {
        // Model.graph → Graph.node → Node.attribute → Attribute.g → ..., 100,000 levels (1.2 MB):
        // enough to overflow the stack of a recursive protobuf parser.
        func varint(_ v: Int) -> [UInt8] {
            var v = v, out: [UInt8] = []
            while v >= 0x80 { out.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
            return out + [UInt8(v)]
        }
        // Written back to front, each message's key and length before what it holds.
        var reversed: [UInt8] = []
        func wrap(_ number: Int) { reversed += (varint(number << 3 | 2) + varint(reversed.count)).reversed() }
        for _ in 0..<100_000 { wrap(6); wrap(5); wrap(1) }
        wrap(7)
        reversed += [17, 0x10, 2, 8 << 3 | 2]  // opset_import { version: 17 }
        let dir = try TemporaryDirectory()
        let path = dir.file("nested.onnx")
        try Data(reversed.reversed()).write(to: URL(fileURLWithPath: path))
        try expectError(path, "the model nests graphs more than 100 messages deep (a graph in an attribute of a node of a graph ...)")
    }

    func testTruncationAtManyOffsetsFailsCleanly() throws {
        let dir = try TemporaryDirectory()
        let original = try Data(contentsOf: URL(fileURLWithPath: Fixtures.tiny("dynamo_opset18.onnx")))
        try FileManager.default.copyItem(atPath: Fixtures.tiny("dynamo_opset18.onnx.data"), toPath: dir.file("cut.onnx.data"))
        var messages: [String: Int] = [:]
        for k in 1..<48 {
            let path = dir.file("cut.onnx")
            try original.prefix(original.count * k / 48 + k).write(to: URL(fileURLWithPath: path))
            let result = try GraftProcess.run(["infer", path, "--input", input])
            XCTAssertEqual(result.status, 1, "cut \(k)")
            XCTAssertTrue(result.stderr.hasPrefix("graft: error: \(path): "), result.stderr)
            XCTAssertEqual(result.stderr.filter { $0 == "\n" }.count, 1, result.stderr)
            messages[String(result.stderr.dropFirst("graft: error: \(path): ".count)), default: 0] += 1
        }
        XCTAssertEqual(messages["not an ONNX model: the protobuf does not parse (truncated or another format)\n"], 47, "\(messages)")
    }

    func testExternalDataThroughASymlinkOutOfTheFolder() throws {
        let outside = try TemporaryDirectory(), dir = try TemporaryDirectory()
        try FileManager.default.copyItem(atPath: Fixtures.tiny("dynamo_opset18.onnx.data"), toPath: outside.file("weights"))
        try FileManager.default.copyItem(atPath: Fixtures.tiny("dynamo_opset18.onnx"), toPath: dir.file("m.onnx"))
        try FileManager.default.createSymbolicLink(atPath: dir.file("dynamo_opset18.onnx.data"), withDestinationPath: outside.file("weights"))
        let real = try XCTUnwrap(realpath(outside.file("weights"), nil))
        defer { free(real) }
        try expectError(dir.file("m.onnx"),
                        "tensor 'conv1.weight': external data location 'dynamo_opset18.onnx.data' escapes the model's folder (it resolves to \(String(cString: real)))")
    }

    func testHDF5Corpus() throws {
        let cases: [(String, String)] = [
            ("hdf5_external_link.h5", "'/conv1.weight' is an external link to 'elsewhere.h5:/conv1.weight'; Graft reads only what is inside the model file"),
            ("hdf5_external_storage.h5",
             "dataset '/conv1.weight' keeps its data in other files (external storage or a virtual dataset); Graft reads only what is inside the model file"),
            ("hdf5_virtual_dataset.h5",
             "dataset '/conv1.weight' keeps its data in other files (external storage or a virtual dataset); Graft reads only what is inside the model file"),
            ("hdf5_unwritten_dataset.h5",
             "dataset '/fc.weight' stores 0 bytes; its shape [3, 16] of float32 needs 192 (the file is truncated, or the data was never written)"),
            ("hdf5_huge_dataset.h5", "dataset '/fc.weight' [2147483648, 16] of float32 is larger than Graft's limit of 4 GiB per tensor"),
            ("hdf5_link_cycle.h5", "group '/loop" + String(repeating: "/a", count: 64) + "' is nested more than 64 levels deep"),
            ("hdf5_link_fanout.h5", "the file has more than 100000 groups and datasets (groups linked more than once?)"),
        ]
        for (name, message) in cases { try expectError(bad(name), message) }
        // The spoiled state_dicts of fixtures/hdf5/bad, as the HDF5 tests see them in-process.
        let model = "torchvision ResNet (BasicBlock [1, 1, 1, 1])"
        let spoiled: [(String, String)] = [
            ("missing_key.h5", "the state_dict does not match a \(model): missing layer1.0.bn1.running_var"),
            ("wrong_shape.h5", "the state_dict does not fit a \(model): wrong shape fc.weight [3, 15] (expected [3, 16])"),
            ("wrong_rank.h5", "dataset '/layer2.0.conv1.weight' has shape [4, 18] (rank 2); a convolution weight has rank 4"),
            ("int_weight.h5", "dataset '/layer1.0.conv2.weight' holds int32; weights must be float16, float32 or float64"),
        ]
        for (name, message) in spoiled { try expectError(Fixtures.path("hdf5/bad/\(name)"), message) }
    }

    func testNotHDF5AndTruncatedHDF5() throws {
        let dir = try TemporaryDirectory()
        let text = dir.file("notes.h5")
        try Data("these are not weights\n".utf8).write(to: URL(fileURLWithPath: text))
        try expectError(text, "not an HDF5 file (no HDF5 signature)")
        let original = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("hdf5/tiny.h5")))
        let cut = dir.file("cut.h5")
        try original.prefix(30_000).write(to: URL(fileURLWithPath: cut))
        try expectError(cut, "not a readable HDF5 file, truncated or damaged (truncated file: eof = 30000, sblock->base_addr = 0, stored_eof = \(original.count))")
    }

    func testNPYCorpus() throws {
        let model = Fixtures.tiny("ts_opset17_folded.onnx")
        let cases: [(String, String)] = [
            ("int16_input.npy", "array type '<i2' is not supported (use float32 '<f4', float64, int64, int32 or bool)"),
            ("int64_input.npy", "tensor 'input': input 'input' must be float32, got int64"),
            ("wrong_shape_input.npy", "tensor 'input': input 'input' must have shape [1, 3, 64, 64], got [1, 3, 32, 32]"),
            ("fortran_input.npy", "the array is in Fortran order; save it in C order"),
            ("truncated_input.npy", "the .npy data holds 72 bytes; shape (1, 3, 32, 32) of float32 needs 12288"),
            ("no_shape_input.npy", "the .npy header lacks descr, fortran_order or shape: {'descr': '<f4', 'fortran_order': False, }"),
        ]
        for (name, message) in cases { try expectError(model, input: bad(name), about: bad(name), message) }
        try expectError(model, input: "/dev/zero", about: "/dev/zero", "not a regular file")
    }

    func testAFailedConvertLeavesThePreviousFileIntact() throws {
        let dir = try TemporaryDirectory()
        let output = dir.file("out.onnx")
        try Data("previous".utf8).write(to: URL(fileURLWithPath: output))
        let result = try GraftProcess.run(["convert", bad("huge_pad.onnx"), output])
        XCTAssertEqual(result.status, 1)
        XCTAssertEqual(try String(contentsOfFile: output, encoding: .utf8), "previous")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["out.onnx"], "no temporary file is left")
    }
}
