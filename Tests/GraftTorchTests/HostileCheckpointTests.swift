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
        ("deep_lists.pth", "deep_lists/data.pkl, byte 2003: containers nest deeper than 1000 levels"),
        ("deep_tuples.pth", "deep_tuples/data.pkl, byte 1002: containers nest deeper than 1000 levels"),
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
