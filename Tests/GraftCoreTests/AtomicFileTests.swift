import Foundation
import GraftCore
import GraftTestSupport
import XCTest

/// Temporary files nobody else can choose: nothing planted at a predictable name is followed or
/// opened, and the temporaries of a process that died are removed by the next write.
final class AtomicFileTests: XCTestCase {
    /// Runs `body` on another thread; fails (instead of blocking the tests) when it has not ended
    /// after `seconds`, calling `unblock` so the thread can finish.
    func expectEnds(within seconds: Double, unblock: () -> Void, _ body: @escaping @Sendable () throws -> Void,
                    file: StaticString = #filePath, line: UInt = #line) {
        let done = DispatchSemaphore(value: 0)
        final class Box: @unchecked Sendable { var error: Error? }
        let box = Box()
        Thread.detachNewThread {
            do { try body() } catch { box.error = error }
            done.signal()
        }
        if done.wait(timeout: .now() + seconds) == .timedOut {
            XCTFail("the write hung", file: file, line: line)
            unblock()
            done.wait()
        }
        XCTAssertNil(box.error, file: file, line: line)
    }

    func testASymlinkAtTheOldTemporaryNameIsNotFollowed() throws {
        let dir = try TemporaryDirectory(), outside = try TemporaryDirectory()
        let victim = outside.file("victim")
        try Data("precious".utf8).write(to: URL(fileURLWithPath: victim))
        // The names a write of y.npy by this process used: .y.npy.tmp-PID.
        try FileManager.default.createSymbolicLink(atPath: dir.file(".y.npy.tmp-\(getpid())"), withDestinationPath: victim)
        try NPY.write(Tensor(shape: [2], floats: [1, 2]), to: dir.file("y.npy"))
        XCTAssertEqual(try String(contentsOfFile: victim, encoding: .utf8), "precious")
        let written = try FileManager.default.attributesOfItem(atPath: dir.file("y.npy"))
        XCTAssertEqual(written[.type] as? FileAttributeType, .typeRegular, "y.npy is a file, not the planted link")
        XCTAssertEqual(try NPY.read(dir.file("y.npy")).floats, [1, 2])
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: dir.file(".y.npy.tmp-\(getpid())")), victim,
                       "what was planted is left alone")
    }

    func testAFIFOAtTheOldTemporaryNameIsNotOpened() throws {
        let dir = try TemporaryDirectory()
        let fifo = dir.file(".y.npy.tmp-\(getpid())")
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        let target = dir.file("y.npy")
        expectEnds(within: 10, unblock: { close(open(fifo, O_RDONLY | O_NONBLOCK)) }) {
            try AtomicFile.write(Data("new".utf8), to: target)
        }
        XCTAssertEqual(try String(contentsOfFile: target, encoding: .utf8), "new")
    }

    func testTemporaryNamesAreRandomExclusiveAndHonourTheUmask() throws {
        let dir = try TemporaryDirectory()
        let a = try TemporaryFile(for: dir.file("m.onnx")), b = try TemporaryFile(for: dir.file("m.onnx"))
        XCTAssertNotEqual(a.path, b.path)
        let name = (a.path as NSString).lastPathComponent
        XCTAssertTrue(name.hasPrefix(".m.onnx.graft-\(getpid())-") && name.hasSuffix(".tmp") && name.count == ".m.onnx.graft-\(getpid())-".count + 20, name)
        try a.write(Data("x".utf8))
        try a.commit()
        b.discard()
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["m.onnx"])
        let mask = umask(0o22)
        umask(mask)
        let mode = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: dir.file("m.onnx"))[.posixPermissions] as? Int)
        XCTAssertEqual(mode, 0o666 & ~Int(mask))
    }

    func testStaleTemporariesOfDeadProcessesAreRemoved() throws {
        let dir = try TemporaryDirectory()
        let ended = Process()
        ended.executableURL = URL(fileURLWithPath: "/bin/true")
        try ended.run()
        ended.waitUntilExit()
        let dead = ended.processIdentifier
        let stale = [".y.npy.graft-\(dead)-0123456789abcdef.tmp", ".m.onnx.data.graft-\(dead)-fedcba9876543210.tmp"]
        let kept = [".y.npy.graft-\(getppid())-0123456789abcdef.tmp", ".y.npy.tmp-\(dead)", "notes.graft-\(dead)-0123456789abcdef.tmp"]
        for name in stale + kept { try Data("left".utf8).write(to: URL(fileURLWithPath: dir.file(name))) }
        try AtomicFile.write(Data("new".utf8), to: dir.file("y.npy"))
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: dir.path)), Set(kept + ["y.npy"]),
                       "only this scheme's names whose process is gone are removed")
    }

    func testAFailedRenameLeavesNothingBehind() throws {
        let dir = try TemporaryDirectory()
        try FileManager.default.createDirectory(atPath: dir.file("y.npy/keep"), withIntermediateDirectories: true)
        XCTAssertThrowsError(try AtomicFile.write(Data("new".utf8), to: dir.file("y.npy"))) { error in
            XCTAssertEqual((error as? GraftError)?.description, "\(dir.file("y.npy")): cannot write: Is a directory")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["y.npy"])
    }
}
