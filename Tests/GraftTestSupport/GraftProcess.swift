import Foundation

/// Runs the built `graft` executable, as a user would, and captures what it prints.
public struct GraftProcess {
    public var status: Int32
    public var stdout: String
    public var stderr: String

    /// The `graft` binary beside the test bundle (`swift test` builds it into the same folder).
    public static var executable: URL {
        var folder = Bundle.main.bundleURL
        for _ in 0..<3 {
            let candidate = folder.appendingPathComponent("graft")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            folder.deleteLastPathComponent()
        }
        return Bundle.main.bundleURL.appendingPathComponent("graft")
    }

    /// Runs `graft` with `arguments` and waits for it to end.
    ///
    /// - Parameters:
    ///   - environment: variables added to this process's environment.
    ///   - timeout: seconds after which the child is killed (SIGKILL, so a hang fails the test
    ///     with status 9 instead of blocking it).
    @discardableResult
    public static func run(_ arguments: [String], in directory: String? = nil, environment: [String: String] = [:],
                           timeout: Double? = nil) throws -> GraftProcess {
        try capture(executable, arguments, in: directory, environment: environment, timeout: timeout)
    }

    /// Runs any executable as `run` runs `graft`, and captures what it prints.
    public static func capture(_ executable: URL, _ arguments: [String], in directory: String? = nil,
                               environment: [String: String] = [:], timeout: Double? = nil) throws -> GraftProcess {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        if let timeout {
            let pid = process.processIdentifier
            DispatchQueue.global().asyncAfter(deadline: .now() + timeout) { if process.isRunning { kill(pid, SIGKILL) } }
        }
        // Read both pipes before waiting so a large output cannot block the child.
        final class Box: @unchecked Sendable { var data = Data() }
        let errBox = Box()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            errBox.data = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        let errData = errBox.data
        process.waitUntilExit()
        return GraftProcess(status: process.terminationStatus,
                            stdout: String(decoding: outData, as: UTF8.self),
                            stderr: String(decoding: errData, as: UTF8.self))
    }
}

/// A fresh temporary folder, removed when the value is released.
public final class TemporaryDirectory {
    public let path: String

    public init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("graft-test-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    public func file(_ name: String) -> String { path + "/" + name }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}
