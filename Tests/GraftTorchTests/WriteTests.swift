import Foundation
import GraftCore
import GraftTestSupport
@testable import GraftTorch
import XCTest

/// The tiny torchvision ResNet of `fixtures/safetensors/resnet_tiny.safetensors`, as
/// `tools/check_torch_state_dict.py --torchvision-arch` builds it.
let tinyResNetRecipe = #"{"block": "BasicBlock", "layers": [1, 1, 1, 1], "base": 2, "num_classes": 3}"#

/// Writes `dict` as the checker's reference folder: `keys.txt` and one `.npy` per tensor.
func writeReference(_ dict: StateDict, to folder: String) throws {
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    try (dict.entries.map(\.key).joined(separator: "\n") + "\n").write(toFile: folder + "/keys.txt", atomically: true, encoding: .utf8)
    for (index, entry) in dict.entries.enumerated() {
        try NPY.write(entry.tensor, to: "\(folder)/\(index).npy")
    }
}

/// A state_dict with every element type Graft keeps, sizes that take each of pickle's integer
/// opcodes, an empty tensor, a zero dimension in the middle, and enough tensors to push the
/// pickle's memo past 255 entries.
func mixedStateDict() -> StateDict {
    var entries: [StateDict.Entry] = [
        .init(key: "conv.weight", tensor: Tensor(shape: [2, 3], floats: [0.5, -0.0, .leastNonzeroMagnitude, .infinity, -3, 7])),
        .init(key: "bn.num_batches_tracked", tensor: Tensor(shape: [], int64s: [7])),
        .init(key: "empty", tensor: Tensor(zeros: [0])),
        .init(key: "hollow", tensor: Tensor(zeros: [2, 0, 3])),
        .init(key: "wide", tensor: Tensor(shape: [300], floats: (0..<300).map { Float($0) / 7 })),
        .init(key: "longs", tensor: Tensor(shape: [3], int64s: [-1, 1 << 40, .min])),
        .init(key: "ints", tensor: Tensor(shape: [2], int64s: [-5, 70000]).converted(to: .int32)),
        .init(key: "bytes", tensor: Tensor(shape: [3], int64s: [0, 200, 255]).converted(to: .uint8)),
        .init(key: "signed", tensor: Tensor(shape: [2], int64s: [-128, 127]).converted(to: .int8)),
        .init(key: "mask", tensor: Tensor(shape: [2], int64s: [1, 0]).converted(to: .bool)),
        .init(key: "half", tensor: Tensor(shape: [2], floats: [0.5, 65504]).converted(to: .float16)),
        .init(key: "double", tensor: Tensor(shape: [1], floats: [0.25]).converted(to: .float64)),
        .init(key: "naïve.ключ", tensor: Tensor(scalar: 2)),
    ]
    for layer in 0..<60 {
        entries.append(.init(key: "stack.\(layer).weight", tensor: Tensor(shape: [1, 1, 1, 1], floats: [Float(layer)])))
    }
    return StateDict(entries: entries)
}

final class WriteTests: XCTestCase {
    // MARK: - Loaded by PyTorch

    func testPyTorchLoadsEveryTypeAndTheFileIsTorchSavesOwn() throws {
        let dir = try TemporaryDirectory()
        let dict = mixedStateDict()
        try writeReference(dict, to: dir.file("reference"))
        try TorchCheckpoint.write(dict, to: dir.file("mixed.pth"))
        try TorchPython.run("check_torch_state_dict.py", [dir.file("mixed.pth"), "--reference", dir.file("reference"), "--same-as-torch-save"])
    }

    func testMoreThanAThousandTensorsPickleInPythonsBatches() throws {
        // Python sets dict items 1000 at a time; the 1001st goes alone (SETITEM, not SETITEMS).
        let dir = try TemporaryDirectory()
        let dict = StateDict(entries: (0..<1001).map { .init(key: "p\($0)", tensor: Tensor(scalar: Float($0))) })
        try writeReference(dict, to: dir.file("reference"))
        try TorchCheckpoint.write(dict, to: dir.file("many.pth"))
        try TorchPython.run("check_torch_state_dict.py", [dir.file("many.pth"), "--reference", dir.file("reference"), "--same-as-torch-save"])
    }

    func testResNetReadFromSafetensorsLoadsIntoTorchvisionFromPth() throws {
        let dir = try TemporaryDirectory()
        let fixture = Fixtures.path("safetensors/resnet_tiny.safetensors")
        try TorchCheckpoint.write(Safetensors.read(at: fixture), to: dir.file("resnet_tiny.pth"))
        try TorchPython.run("check_torch_state_dict.py", [dir.file("resnet_tiny.pth"), "--reference", fixture,
                                                          "--same-as-torch-save", "--torchvision-arch", tinyResNetRecipe])
    }

    func testTheCheckerFailsOnADifferentValue() throws {
        let dir = try TemporaryDirectory()
        var dict = mixedStateDict()
        try writeReference(dict, to: dir.file("reference"))
        dict.entries[0].tensor = Tensor(shape: [2, 3], floats: [0.5, 0, .leastNonzeroMagnitude, .infinity, -3, 7])
        try TorchCheckpoint.write(dict, to: dir.file("changed.pth"))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: TorchPython.executable)
        process.arguments = [Fixtures.root.appendingPathComponent("tools/check_torch_state_dict.py").path,
                             dir.file("changed.pth"), "--reference", dir.file("reference")]
        let err = Pipe()
        process.standardError = err
        try process.run()
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 1)
        XCTAssertEqual(message, "check_torch_state_dict: conv.weight: values differ from the reference's\n")
    }

    // MARK: - The archive's layout

    func testEntriesAreAlignedAndNamedAfterTheFile() throws {
        let dict = mixedStateDict()
        let archive = try TorchCheckpoint.archive(dict, name: "model")
        let pickle = PickleWriter.stateDict(dict.entries.map { ($0.key, $0.tensor.dtype, $0.tensor.shape) })
        var sizes = ["model/data.pkl": pickle.count, "model/.format_version": 1, "model/.storage_alignment": 2,
                     "model/byteorder": 6, "model/version": 2, "model/.data/serialization_id": 40]
        for (index, entry) in dict.entries.enumerated() { sizes["model/data/\(index)"] = entry.tensor.byteCount }
        var names: [String] = []
        var offset = 0
        // Walk the local headers: every entry's data starts on a 64-byte boundary, and a data
        // descriptor follows non-empty data.
        while offset + 30 <= archive.count, archive.littleEndian32(at: offset) == 0x0403_4B50 {
            let nameLength = Int(archive.littleEndian16(at: offset + 26))
            let extraLength = Int(archive.littleEndian16(at: offset + 28))
            let name = String(decoding: archive[(offset + 30)..<(offset + 30 + nameLength)], as: UTF8.self)
            names.append(name)
            XCTAssertEqual(archive[offset + 30 + nameLength], UInt8(ascii: "F"), name)
            let dataStart = offset + 30 + nameLength + extraLength
            XCTAssertEqual(dataStart % 64, 0, name)
            let size = try XCTUnwrap(sizes[name], name)
            XCTAssertEqual(archive.littleEndian16(at: offset + 6), size == 0 ? 0x0800 : 0x0808, name)
            if size > 0 { XCTAssertEqual(archive.littleEndian32(at: dataStart + size), 0x0807_4B50, name) }
            offset = dataStart + size + (size == 0 ? 0 : 16)
        }
        let expected = ["model/data.pkl", "model/.format_version", "model/.storage_alignment", "model/byteorder"]
            + dict.entries.indices.map { "model/data/\($0)" } + ["model/version", "model/.data/serialization_id"]
        XCTAssertEqual(names, expected)
        XCTAssertEqual(archive.littleEndian32(at: offset), 0x0201_4B50, "the central directory follows the last entry")
        XCTAssertEqual(archive.suffix(22).prefix(4), Data([0x50, 0x4B, 0x05, 0x06]))
    }

    func testArchiveNameIsTheFileStem() {
        XCTAssertEqual(TorchCheckpoint.archiveName("/tmp/my_model.pth"), "my_model")
        XCTAssertEqual(TorchCheckpoint.archiveName("/tmp/resnet.best.pt"), "resnet.best")
        XCTAssertEqual(TorchCheckpoint.archiveName("weights"), "weights")
        XCTAssertEqual(TorchCheckpoint.archiveName("/tmp/.pth"), "archive")
    }

    func testCRC32OfTheCheckValue() {
        let crc = Data("123456789".utf8).withUnsafeBytes { ZipWriter.CRC32.checksum($0) }
        XCTAssertEqual(crc, 0xCBF4_3926)
        XCTAssertEqual(Data().withUnsafeBytes { ZipWriter.CRC32.checksum($0) }, 0)
    }

    func testAnEntryPastFourGiBIsRefused() throws {
        // A sparse file mapped lazily: nothing of its 4 GiB is read, since the size is checked first.
        let dir = try TemporaryDirectory()
        XCTAssertTrue(FileManager.default.createFile(atPath: dir.file("big"), contents: nil))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: dir.file("big")))
        try handle.truncate(atOffset: 1 << 32)
        try handle.close()
        let big = try MappedFile(path: dir.file("big"), populate: false)
        var zip = ZipWriter()
        try zip.add("archive/data.pkl", Data([1, 2, 3]))
        XCTAssertThrowsError(try zip.add("archive/data/0", big.bytes(in: 0..<big.size))) { error in
            XCTAssertEqual("\(error)", "entry 'archive/data/0' would pass 4 GiB into the archive, which Graft does not write (no ZIP64 entries)")
        }
    }

    func testSerializationIDIsFortyDigitsThatFollowTheContents() {
        let a = TorchCheckpoint.serializationID(names: ["w"], checksums: [1, 2])
        XCTAssertEqual(a.count, 40)
        XCTAssertTrue(a.allSatisfy(\.isNumber))
        XCTAssertEqual(a, TorchCheckpoint.serializationID(names: ["w"], checksums: [1, 2]))
        XCTAssertNotEqual(a.suffix(20), TorchCheckpoint.serializationID(names: ["w"], checksums: [1, 3]).suffix(20))
        XCTAssertNotEqual(a.prefix(20), TorchCheckpoint.serializationID(names: ["v"], checksums: [1, 2]).prefix(20))
    }

    // MARK: - The pickle

    func testIntegersTakePythonsOpcodes() {
        let cases: [(Int, String)] = [
            (0, "4b00"), (255, "4bff"), (256, "4d0001"), (65535, "4dffff"), (65536, "4a00000100"), (-1, "4affffffff"),
            (2_147_483_647, "4affffff7f"), (2_147_483_648, "8a050000008000"), (-2_147_483_648, "4a00000080"),
            (-2_147_483_649, "8a05ffffff7fff"), (1 << 40, "8a06000000000001"), (Int.min, "8a080000000000000080"),
        ]
        for (value, hex) in cases {
            var writer = PickleWriter()
            writer.int(value)
            XCTAssertEqual(writer.bytes.dropFirst(2).map { String(format: "%02x", $0) }.joined(), hex, "\(value)")
        }
    }

    func testStridesCountAZeroDimensionAsOne() {
        XCTAssertEqual(PickleWriter.contiguousStrides([2, 3, 4]), [12, 4, 1])
        XCTAssertEqual(PickleWriter.contiguousStrides([2, 0, 3]), [3, 3, 1])
        XCTAssertEqual(PickleWriter.contiguousStrides([]), [])
    }

    // MARK: - Refusals

    func testADuplicateKeyIsRefusedAndNothingIsWritten() throws {
        let dir = try TemporaryDirectory()
        let dict = StateDict(entries: [.init(key: "a", tensor: Tensor(scalar: 1)), .init(key: "a", tensor: Tensor(scalar: 2))])
        XCTAssertThrowsError(try TorchCheckpoint.write(dict, to: dir.file("dup.pth"))) { error in
            XCTAssertEqual("\(error)", "\(dir.file("dup.pth")): tensor 'a': appears twice in the state_dict")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.file("dup.pth")))
    }
}

extension Data {
    func littleEndian16(at offset: Int) -> UInt16 {
        UInt16(self[startIndex + offset]) | UInt16(self[startIndex + offset + 1]) << 8
    }

    func littleEndian32(at offset: Int) -> UInt32 {
        UInt32(littleEndian16(at: offset)) | UInt32(littleEndian16(at: offset + 2)) << 16
    }
}
