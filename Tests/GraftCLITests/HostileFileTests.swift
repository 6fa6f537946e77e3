import Foundation
import GraftCore
import GraftTestSupport
import XCTest

/// Files and signals as an attacker or an accident presents them: names planted where Graft
/// writes, FIFOs where it reads, a kill in the middle of a write, a file cut short under a
/// mapping. Every run ends (each has a timeout), says one line, and leaves no temporary file.
final class HostileFileTests: XCTestCase {
    let tiny = Fixtures.tiny("ts_opset17_folded.onnx")
    let input = Fixtures.tiny("input_b1.npy")

    func names(_ dir: TemporaryDirectory) throws -> Set<String> {
        Set(try FileManager.default.contentsOfDirectory(atPath: dir.path))
    }

    /// The process ids the next children will likely get (Linux hands them out in order).
    func nextPIDs(_ count: Int) throws -> ClosedRange<Int> {
        let last = try XCTUnwrap(Int(try String(contentsOfFile: "/proc/sys/kernel/ns_last_pid", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)))
        return (last + 1)...(last + count)
    }

    /// A process id that no process has (one that just ended).
    func deadPID() throws -> Int32 {
        let ended = Process()
        ended.executableURL = URL(fileURLWithPath: "/bin/true")
        try ended.run()
        ended.waitUntilExit()
        return ended.processIdentifier
    }

    // MARK: - Writes

    func testSymlinksAtTheOldTemporaryNamesAreNotFollowed() throws {
        let dir = try TemporaryDirectory(), outside = try TemporaryDirectory()
        let victim = outside.file("victim")
        try Data("precious".utf8).write(to: URL(fileURLWithPath: victim))
        // .NAME.tmp-PID for every process id the child may get, for each file the commands write.
        for pid in try nextPIDs(300) {
            for name in ["y.npy", "m.onnx", "m.onnx.data"] {
                try FileManager.default.createSymbolicLink(atPath: dir.file(".\(name).tmp-\(pid)"), withDestinationPath: victim)
            }
        }
        let planted = try names(dir)
        let infer = try GraftProcess.run(["infer", tiny, "--input", input, "--output", dir.file("y.npy")], timeout: 120)
        XCTAssertEqual(infer.status, 0, infer.stderr)
        let convert = try GraftProcess.run(["convert", Fixtures.tiny("ts_opset17_bn.onnx"), dir.file("m.onnx"), "--external-data"], timeout: 120)
        XCTAssertEqual(convert.status, 0, convert.stderr)
        XCTAssertEqual(try String(contentsOfFile: victim, encoding: .utf8), "precious")
        XCTAssertEqual(try names(dir), planted.union(["y.npy", "m.onnx", "m.onnx.data"]))
        for name in ["y.npy", "m.onnx", "m.onnx.data"] {
            XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: dir.file(name))[.type] as? FileAttributeType, .typeRegular, name)
        }
    }

    func testFIFOsAtTheOldTemporaryNamesAreNotOpened() throws {
        let dir = try TemporaryDirectory()
        for pid in try nextPIDs(300) { XCTAssertEqual(mkfifo(dir.file(".y.npy.tmp-\(pid)"), 0o600), 0) }
        let infer = try GraftProcess.run(["infer", tiny, "--input", input, "--output", dir.file("y.npy")], timeout: 60)
        XCTAssertEqual(infer.status, 0, "a hang is killed after 60 s: \(infer.stderr)")
        XCTAssertEqual(try NPY.read(dir.file("y.npy")).shape, [1, 10])
    }

    func testTheNextWriteRemovesTemporariesADeadRunLeft() throws {
        let dir = try TemporaryDirectory()
        let dead = try deadPID()
        let stale = [".m.onnx.graft-\(dead)-0123456789abcdef.tmp", ".m.onnx.5c0ffee5c0ffee55.data.graft-\(dead)-0123456789abcdef.tmp"]
        for name in stale { try Data(count: 4096).write(to: URL(fileURLWithPath: dir.file(name))) }
        let live = ".m.onnx.graft-\(getpid())-0123456789abcdef.tmp"
        try Data().write(to: URL(fileURLWithPath: dir.file(live)))
        let result = try GraftProcess.run(["convert", tiny, dir.file("m.onnx")], timeout: 120)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(try names(dir), ["m.onnx", live])
    }

    /// Runs `arguments` and sends `signal` once a temporary file appears in `dir` (SIGKILL after
    /// 120 s if none does); returns the ended process and whether the signal was sent.
    func convert(_ arguments: [String], in dir: TemporaryDirectory, signal: Int32) throws -> (Process, Bool) {
        let process = Process()
        process.executableURL = GraftProcess.executable
        process.arguments = arguments
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(120)
        var sent = false
        while process.isRunning && Date() < deadline {
            if try names(dir).contains(where: { $0.hasPrefix(".") }) {
                kill(process.processIdentifier, signal)
                sent = true
                break
            }
            usleep(200)
        }
        if !sent { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        return (process, sent)
    }

    /// Starts `graft convert` on the full ResNet-50 and sends `signal` once its temporary file
    /// exists; the run must end with `status`, leaving the folder empty.
    func expectCleanStop(_ signal: Int32, status: Int32, file: StaticString = #filePath, line: UInt = #line) throws {
        let model = try Fixtures.materialized("resnet50/resnet50_bn.onnx")
        let dir = try TemporaryDirectory()
        let (process, sent) = try convert(["convert", model, dir.file("out.onnx"), "--no-optimize"], in: dir, signal: signal)
        XCTAssertTrue(sent, "the temporary file was never seen", file: file, line: line)
        XCTAssertEqual(process.terminationReason, .exit, file: file, line: line)
        XCTAssertEqual(process.terminationStatus, status, file: file, line: line)
        XCTAssertEqual(try names(dir), [], "no temporary file and no output are left", file: file, line: line)
    }

    func testSIGTERMDuringAWriteRemovesTheTemporaryFileAndExits143() throws {
        try expectCleanStop(SIGTERM, status: 143)
    }

    func testSIGINTDuringAWriteRemovesTheTemporaryFileAndExits130() throws {
        try expectCleanStop(SIGINT, status: 130)
    }

    /// SIGTERM once the new data file is renamed into place, before its model is: no model names
    /// it, so it goes with the temporaries. (A run that ended first must have written both.)
    func testSIGTERMBetweenTheDataFileAndItsModelLeavesNeither() throws {
        let model = try Fixtures.materialized("resnet50/resnet50_bn.onnx")
        let dir = try TemporaryDirectory()
        let process = Process()
        process.executableURL = GraftProcess.executable
        process.arguments = ["convert", model, dir.file("out.onnx"), "--no-optimize", "--external-data"]
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(120)
        while process.isRunning && Date() < deadline && !FileManager.default.fileExists(atPath: dir.file("out.onnx.data")) { usleep(100) }
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        if process.terminationStatus == 0 {
            XCTAssertEqual(try names(dir), ["out.onnx", "out.onnx.data"])
        } else {
            XCTAssertEqual(process.terminationStatus, 143)
            XCTAssertEqual(try names(dir), [], "the data file no model names is removed too")
        }
    }

    /// kill -9 in the middle of `convert`, where nothing can clean up: the model already at the
    /// target is untouched, and the next write there removes what the dead run left.
    func testKill9DuringConvertLosesNothingAndTheNextWriteCleansUp() throws {
        let model = try Fixtures.materialized("resnet50/resnet50_bn.onnx")
        let dir = try TemporaryDirectory()
        let target = dir.file("out.onnx")
        XCTAssertEqual(try GraftProcess.run(["convert", tiny, target]).status, 0)
        let before = try Data(contentsOf: URL(fileURLWithPath: target))
        let (process, killed) = try convert(["convert", model, target, "--no-optimize", "--external-data"], in: dir, signal: SIGKILL)
        XCTAssertTrue(killed, "the temporary file was never seen")
        XCTAssertEqual(process.terminationReason, .uncaughtSignal)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: target)), before, "the old model is untouched")
        XCTAssertGreaterThan(try names(dir).count, 1, "a killed run leaves its temporary file")
        let next = try GraftProcess.run(["convert", tiny, target], timeout: 120)
        XCTAssertEqual(next.status, 0, next.stderr)
        XCTAssertEqual(try names(dir), ["out.onnx"], "the next write removes what the dead run left")
    }

    /// A full disk (a 2 MiB tmpfs): the write fails in one line naming the file, the model
    /// already there is untouched, and no temporary file is left.
    func testAFullDiskIsOneLineAndLosesNothing() throws {
        guard geteuid() == 0 else { throw XCTSkip("mounting a small tmpfs needs root") }
        let model = try Fixtures.materialized("resnet50/resnet50_bn.onnx")
        let dir = try TemporaryDirectory()
        func mount(_ arguments: [String]) throws -> Int32 {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/" + arguments[0])
            p.arguments = Array(arguments.dropFirst())
            try p.run()
            p.waitUntilExit()
            return p.terminationStatus
        }
        XCTAssertEqual(try mount(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", dir.path]), 0, "mount a 2 MiB tmpfs")
        defer { _ = try? mount(["umount", dir.path]) }
        let target = dir.file("out.onnx")
        XCTAssertEqual(try GraftProcess.run(["convert", tiny, target]).status, 0)
        let before = try Data(contentsOf: URL(fileURLWithPath: target))
        for extra in [[], ["--external-data"]] {
            let full = try GraftProcess.run(["convert", model, target, "--no-optimize"] + extra, timeout: 120)
            XCTAssertEqual(full.status, 1, full.stderr)
            XCTAssertEqual(full.stderr.split(separator: "\n").count, 1, full.stderr)
            XCTAssertTrue(full.stderr.hasPrefix("graft: error: \(dir.path)/out.onnx"), full.stderr)
            XCTAssertTrue(full.stderr.contains("No space left on device"), full.stderr)
            XCTAssertEqual(try names(dir), ["out.onnx"], "no temporary file is left")
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: target)), before, "the old model is untouched")
        }
    }

    func testCtrlCDuringTrainingStopsAfterTheBatchAndExits130() throws {
        let dir = try TemporaryDirectory()
        let data = dir.file("data"), out = dir.file("m.onnx")
        XCTAssertEqual(try GraftProcess.run(["demo-data", data, "--per-class", "8"]).status, 0)
        let process = Process()
        process.executableURL = GraftProcess.executable
        process.arguments = ["train", Fixtures.tiny("ts_opset17_dynamic.onnx"), "--data", data, "--out", out,
                             "--epochs", "100000", "--patience", "0", "--head", "8", "--dropout", "0.1"]
        let err = Pipe()
        process.standardError = err
        try process.run()
        let deadline = Date().addingTimeInterval(120)
        while process.isRunning && Date() < deadline && !FileManager.default.fileExists(atPath: out + ".state") { usleep(1000) }
        kill(process.processIdentifier, SIGINT)
        let pid = process.processIdentifier
        DispatchQueue.global().asyncAfter(deadline: .now() + 60) { if process.isRunning { kill(pid, SIGKILL) } }
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationReason, .exit)
        XCTAssertEqual(process.terminationStatus, 130)
        XCTAssertTrue(stderr.hasSuffix("graft: error: interrupted; completed epochs are saved (\(out).state): run again with --resume to continue\n"), stderr)
        XCTAssertFalse(try names(dir).contains { $0.hasSuffix(".tmp") })
    }

    // MARK: - Reads

    func testFIFOsAreRefusedWhereverAFileIsRead() throws {
        let dir = try TemporaryDirectory()
        for name in ["fifo.onnx", "fifo.h5", "fifo.jpg", "fifo.npy"] { XCTAssertEqual(mkfifo(dir.file(name), 0o600), 0) }
        let cases: [([String], String)] = [
            (["summary", dir.file("fifo.onnx")], "graft: error: \(dir.file("fifo.onnx")): not a regular file\n"),
            (["summary", dir.file("fifo.h5")], "graft: error: \(dir.file("fifo.h5")): not a regular file\n"),
            (["convert", dir.file("fifo.h5"), dir.file("out.onnx")], "graft: error: \(dir.file("fifo.h5")): not a regular file\n"),
            (["infer", tiny, "--input", dir.file("fifo.npy")], "graft: error: \(dir.file("fifo.npy")): not a regular file\n"),
            (["infer", tiny, dir.file("fifo.jpg")],
             "graft: skipped \(dir.file("fifo.jpg")): cannot read: not a regular file\ngraft: error: \(dir.file("fifo.jpg")): none of the 1 images could be read\n"),
        ]
        for (arguments, message) in cases {
            let result = try GraftProcess.run(arguments, timeout: 60)
            XCTAssertEqual(result.status, 1, "\(arguments): a hang is killed after 60 s")
            XCTAssertEqual(result.stderr, message, "\(arguments)")
        }
    }

    func testAFIFOInATrainingFolderIsSkippedAsUnreadable() throws {
        let dir = try TemporaryDirectory()
        let data = dir.file("data"), out = dir.file("m.onnx")
        XCTAssertEqual(try GraftProcess.run(["demo-data", data, "--per-class", "8"]).status, 0)
        XCTAssertEqual(mkfifo(data + "/train/cat.stuck.jpg", 0o600), 0)
        let result = try GraftProcess.run(["train", Fixtures.tiny("ts_opset17_dynamic.onnx"), "--data", data, "--out", out,
                                           "--epochs", "1", "--head", "8", "--dropout", "0.1"], timeout: 300)
        XCTAssertEqual(result.status, 0, "a hang is killed after 300 s: \(result.stderr)")
        XCTAssertTrue(result.stderr.contains("\(data)/train/cat.stuck.jpg: cannot read: not a regular file"), result.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out))
    }

    func testAModelCutShortWhileMappedIsOneLineNotACrash() throws {
        let dir = try TemporaryDirectory()
        let model = dir.file("m.onnx")
        try FileManager.default.copyItem(atPath: tiny, toPath: model)
        // The hook truncates the file right after it is mapped, as another process might.
        let result = try GraftProcess.run(["convert", model, dir.file("out.onnx")],
                                          environment: ["GRAFT_TEST_TRUNCATE_AFTER_MAPPING": model], timeout: 60)
        XCTAssertEqual(result.status, 1)
        XCTAssertEqual(result.stderr, "graft: error: \(model): the file changed while it was read\n")
        XCTAssertEqual(try names(dir), ["m.onnx"])
    }
}
