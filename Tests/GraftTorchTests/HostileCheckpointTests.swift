import Foundation
import GraftCore
import GraftTestSupport
import GraftTorch
import XCTest

/// The hostile corpus (fixtures/torch/bad/): each file refused with its own one-line message,
/// and nothing a pickle asks for ever run.
final class HostileCheckpointTests: XCTestCase {
    static func path(_ name: String) -> String { Fixtures.path("torch/bad/\(name)") }

    /// File → the message after "<path>: ".
    static let expected: [(file: String, message: String)] = [
        // Names of code to run, refused where they are named.
        ("os_system.pth", "os_system/data.pkl, byte 17: refuses the global 'os.system': only tensors, containers and numbers are read"),
        ("posix_system.pth", "posix_system/data.pkl, byte 21: refuses the global 'posix.system': only tensors, containers and numbers are read"),
        ("builtins_eval.pth", "builtins_eval/data.pkl, byte 43: refuses the global 'builtins.eval': only tensors, containers and numbers are read"),
        ("main_evil.pth", "main_evil/data.pkl, byte 21: refuses the global '__main__.Evil': only tensors, containers and numbers are read"),
        ("reduce_storage_type.pth", "reduce_storage_type/data.pkl, byte 49: refuses to call 'torch.FloatStorage' with (list): "
            + "only tensors, containers and numbers are read"),
        // The unpickler's bounds.
        ("memo_unset.pth", "memo_unset/data.pkl, byte 17: memo slot 7 is read but was never written"),
        ("deep_lists.pth", "deep_lists/data.pkl, byte 403: containers nest deeper than 200 levels"),
        ("deep_tuples.pth", "deep_tuples/data.pkl, byte 202: containers nest deeper than 200 levels"),
        ("long_stack.pth", "long_stack/data.pkl, byte 65538: the stack grows past 65536 values"),
        // Storages that do not hold their tensors.
        ("short_storage.pth", "tensor 'fc.weight': its view (offset 0, size [3, 2], stride [2, 1]) reaches past the end of its storage of 4 elements"),
        ("offset_past_end.pth", "tensor 'fc.weight': its view (offset 10, size [2], stride [1]) reaches past the end of its storage of 4 elements"),
        ("truncated_storage.pth", "tensor 'fc.weight': its storage 'truncated_storage/data/0' holds 16 bytes, "
            + "not the 6 elements of 4 bytes its persistent id declares"),
        ("missing_storage.pth", "tensor 'fc.bias': its storage 'archive/data/1' is missing from the archive"),
        ("legacy_count_past_end.pth", "legacy storage '0' claims 1099511627776 elements of 4 bytes; the file has 24 bytes left"),
        // Zip archives that are not what torch.save writes, or lie.
        ("deflated.pth", "zip entry 'archive/data.pkl' is compressed (method 8); only stored entries are read, as torch.save writes them"),
        ("dotdot_entry.pth", "zip entry 'archive/../../etc/cron.d/graft' has a '..' in its name"),
        ("absolute_entry.pth", "zip entry '/archive/data.pkl' has an absolute name"),
        ("directory_past_end.pth", "the zip central directory (523 bytes at byte 2268) lies past the end of the file (1268 bytes)"),
        ("directory_count_lies.pth", "the zip central directory (523 bytes) cannot hold the 60000 entries it claims"),
        ("bad_local_header.pth", "zip entry 'archive/data/0': no local header at byte 452"),
        ("renamed_local_header.pth", "zip entry 'archive/data/0': its local header names it 'archive/data/7'"),
    ]

    func testEveryHostileFileIsRefusedWithItsMessage() {
        for (file, message) in Self.expected {
            let path = Self.path(file)
            XCTAssertThrowsError(try TorchCheckpoint.read(at: path), file) { error in
                XCTAssertEqual("\(error)", "\(path): \(message)")
                XCTAssertEqual((error as? GraftError)?.kind, .badInput, file)
            }
        }
    }

    /// Pickles spoiled one way each, as the data pickle of a legacy file made here.
    func testMalformedPicklesAreRefusedWithTheirMessage() throws {
        let word: [UInt8] = [0x58, 1, 0, 0, 0, UInt8(ascii: "w")]   // BINUNICODE 'w'
        let epoch: [UInt8] = [0x58, 5, 0, 0, 0] + Array("epoch".utf8)
        let cases: [(pickle: [UInt8], message: String)] = [
            ([0x80, 2, 0x8f, 0x2e], "the legacy data pickle, byte 2: opcode 0x8f is not read"),
            ([0x80, 2, 0x58, 100, 0, 0, 0], "the legacy data pickle, byte 2: the pickle ends early"),
            ([0x80, 6, 0x7d, 0x2e], "the legacy data pickle, byte 0: pickle protocol 6 is not read (at most 5)"),
            ([0x80, 2, 0x73, 0x2e], "the legacy data pickle, byte 2: an opcode takes a value from an empty stack"),
            ([0x80, 2, 0x5d, 0x65, 0x2e], "the legacy data pickle, byte 3: an opcode looks for a MARK that is not there"),
            ([0x80, 2, 0x7d] + word + [0x4e, 0x51, 0x73, 0x2e],
             "the legacy data pickle, byte 10: a persistent id that is not ('storage', storage type, key, location, size, view)"),
            ([0x80, 2, 0x8a, 40] + [UInt8](repeating: 0, count: 40) + [0x2e],
             "the legacy data pickle, byte 2: an integer of 40 bytes (at most 32 are read)"),
            ([0x80, 2, 0x4b, 1, 0x7d, 0x62, 0x2e], "the legacy data pickle, byte 5: BUILD sets the state of an int (given a dict)"),
            ([0x80, 2, 0x8c, 1, 0xff, 0x2e], "the legacy data pickle, byte 2: a string that is not UTF-8"),
            ([0x80, 2, 0x4b, 1, 0x29, 0x52, 0x2e], "the legacy data pickle, byte 5: calls an int, which is not a function"),
            ([0x80, 2, 0x63] + Array("torch._utils\n_rebuild_tensor_v2\n".utf8) + [0x29, 0x52, 0x2e],
             "the legacy data pickle, byte 36: refuses to call 'torch._utils._rebuild_tensor_v2' with (): only tensors, containers and numbers are read"),
            ([0x80, 2, 0x63] + Array("torch\nComplexFloatStorage\n".utf8) + [0x2e],
             "the legacy data pickle, byte 2: tensors of 'torch.ComplexFloatStorage' are not read (only float, half, bfloat16, double, integer and bool ones)"),
            ([0x80, 2, 0x5d, 0x2e], "the checkpoint holds a list, not a state_dict or a dict around one"),
            ([0x80, 2, 0x7d, 0x2e], "the checkpoint holds an empty dict"),
            ([0x80, 2, 0x7d] + epoch + [0x4b, 1, 0x73, 0x2e], "no state_dict in the checkpoint (its keys: 'epoch'): name the key that holds it"),
        ]
        for (pickle, message) in cases {
            let path = try Self.legacyFile(around: pickle)
            defer { try? FileManager.default.removeItem(atPath: path) }
            XCTAssertThrowsError(try TorchCheckpoint.read(at: path)) { XCTAssertEqual("\($0)", "\(path): \(message)") }
        }
    }

    func testValueCountIsBounded() throws {
        // A list that grows by batches of 60000 None, each batch below the stack's bound.
        let batch: [UInt8] = [0x28] + [UInt8](repeating: 0x4e, count: 60_000) + [0x65]
        let pickle: [UInt8] = [0x80, 2, 0x5d] + Array([[UInt8]](repeating: batch, count: 84).joined()) + [0x2e]
        let path = try Self.legacyFile(around: pickle)
        defer { try? FileManager.default.removeItem(atPath: path) }
        XCTAssertThrowsError(try TorchCheckpoint.read(at: path)) {
            XCTAssertEqual("\($0)", "\(path): the legacy data pickle, byte 5000169: the pickle makes more than 5000000 values")
        }
    }

    /// Small checkpoints with random bytes changed or cut off: each is read or refused with a
    /// `badInput` error, never a crash.
    func testSpoiledFilesAreReadOrRefused() throws {
        var random = SeededGenerator(seed: 7)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("graft-\(UUID().uuidString).pth").path
        for file in ["toy.pth", "toy_zip64.pth", "toy_big_endian.pth", "toy_protocol1.pth", "toy_legacy_protocol1.pth"] {
            let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("torch/\(file)"))))
            for _ in 0..<1_000 {
                var bytes = original
                for _ in 0...random.integer(below: 4) {
                    bytes[random.integer(below: bytes.count)] = UInt8(random.integer(below: 256))
                }
                if random.integer(below: 8) == 0 { bytes.removeLast(random.integer(below: bytes.count)) }
                try Self.write(bytes, to: path)
                defer { unlink(path) }
                do {
                    _ = try TorchCheckpoint.read(at: path)
                } catch let error as GraftError {
                    XCTAssertEqual(error.kind, .badInput, "\(file): \(error)")
                }
            }
        }
    }

    /// Writes `bytes` to a new file at `path`. (Rewriting one file over and over is slow: ext4
    /// flushes a file truncated and written again.)
    static func write(_ bytes: [UInt8], to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw GraftError(.io, "cannot create", file: path) }
        defer { close(fd) }
        guard bytes.withUnsafeBytes({ Foundation.write(fd, $0.baseAddress, $0.count) }) == bytes.count else {
            throw GraftError(.io, "cannot write", file: path)
        }
    }

    func testOtherLegacyProtocolVersionsAreRefused() throws {
        let path = try Self.legacyFile(around: [0x80, 2, 0x7d, 0x2e], version: [0x80, 2, 0x4d, 0xe8, 0x03, 0x2e])
        defer { try? FileManager.default.removeItem(atPath: path) }
        XCTAssertThrowsError(try TorchCheckpoint.read(at: path)) {
            XCTAssertEqual("\($0)", "\(path): legacy checkpoint protocol version 1000 is not read (only 1001)")
        }
    }

    /// A legacy checkpoint file whose data pickle is `objects`: the magic number, the protocol
    /// version (1001 unless given), no system information and no storages around it.
    static func legacyFile(around objects: [UInt8], version: [UInt8] = [0x80, 2, 0x4d, 0xe9, 0x03, 0x2e]) throws -> String {
        let magic: [UInt8] = [0x80, 2, 0x8a, 10, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e]
        let emptyDict: [UInt8] = [0x80, 2, 0x7d, 0x2e], emptyList: [UInt8] = [0x80, 2, 0x5d, 0x2e]
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("graft-\(UUID().uuidString).pth").path
        try write(magic + version + emptyDict + objects + emptyList, to: path)
        return path
    }

    func testNothingThePicklesAskForIsRun() throws {
        let evidence = ["os-system", "posix-system", "eval", "main-evil"].map { "/tmp/graft-pwned-\($0)" }
        for path in evidence { try? FileManager.default.removeItem(atPath: path) }
        for file in ["os_system.pth", "posix_system.pth", "builtins_eval.pth", "main_evil.pth"] {
            XCTAssertThrowsError(try TorchCheckpoint.read(at: Self.path(file)))
        }
        for path in evidence {
            XCTAssertFalse(FileManager.default.fileExists(atPath: path), "\(path) was created")
        }
    }
}
