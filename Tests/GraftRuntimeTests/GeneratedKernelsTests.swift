import Foundation
import GraftTestSupport
import XCTest

/// The committed C kernels are what tools/gen_kernels.py writes: regenerated into a temporary
/// folder, every file is the same, and Sources/CKernels holds no file the generator does not write.
final class GeneratedKernelsTests: XCTestCase {
    func testCommittedKernelsAreTheGeneratorsOutput() throws {
        let scratch = try TemporaryDirectory()
        let generated = try runTool("/usr/bin/env", ["python3", Fixtures.root.appendingPathComponent("tools/gen_kernels.py").path, "--out", scratch.path])
        let written = generated.split(separator: "\n").compactMap { $0.hasPrefix("wrote ") ? String($0.dropFirst(6)) : nil }
        XCTAssertFalse(written.isEmpty, "gen_kernels.py wrote nothing: \(generated)")
        for relative in written {
            let fresh = try String(contentsOfFile: scratch.file(relative), encoding: .utf8)
            let committed = try String(contentsOfFile: Fixtures.root.appendingPathComponent(relative).path, encoding: .utf8)
            XCTAssert(fresh == committed, "\(relative) differs from what tools/gen_kernels.py writes: run it and commit the result")
        }
        let folder = Fixtures.root.appendingPathComponent("Sources/CKernels")
        let present = FileManager.default.enumerator(atPath: folder.path)!.compactMap { $0 as? String }
            .filter { !$0.hasSuffix("/") && !isDirectory(folder.appendingPathComponent($0).path) }
            .map { "Sources/CKernels/\($0)" }
        XCTAssertEqual(Set(present), Set(written), "Sources/CKernels holds files the generator does not write")
    }

    private func isDirectory(_ path: String) -> Bool {
        var directory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &directory) && directory.boolValue
    }
}
