import Foundation

/// Writes files so that a failure never leaves a partial file and nobody else can choose what
/// gets written: a temporary file with a random name, created exclusively in the target's
/// folder, synced and renamed over the target.
public enum AtomicFile {
    /// Writes `data` to `path` through a `TemporaryFile`.
    ///
    /// - Throws: `GraftError(.io, "cannot write: <reason>", file: path)`; the file at `path`, if
    ///   any, is then as it was.
    public static func write(_ data: Data, to path: String) throws {
        try write(to: path) { try $0.write(data) }
    }

    /// Lets `body` fill a `TemporaryFile` beside `path` (through its descriptor, or by opening
    /// its path), then renames it over `path`; on any failure the temporary file is removed.
    public static func write(to path: String, _ body: (TemporaryFile) throws -> Void) throws {
        let temporary = try TemporaryFile(for: path)
        try body(temporary)
        try temporary.commit()
    }
}

/// A file being written for `target`: `.NAME.graft-PID-RANDOM.tmp` in the target's folder,
/// created with `O_CREAT | O_EXCL | O_NOFOLLOW` (so nothing planted at that name is followed or
/// opened), listed for `SignalCleanup` while it lives, and removed unless committed.
///
/// Creating one first removes the temporary files of this naming scheme in the folder whose
/// process no longer exists (left by a run that was killed).
public final class TemporaryFile: @unchecked Sendable {
    /// Where the content goes once committed.
    public let target: String
    /// The temporary file's own path, for a library that opens files by name (HDF5).
    public let path: String
    /// The open descriptor of the temporary file, write-only.
    public let descriptor: Int32
    private var slot: Int?
    private var done = false

    /// Creates the temporary file for `target`.
    ///
    /// - Throws: `GraftError(.io, "cannot write: <reason>", file: target)`.
    public init(for target: String) throws {
        self.target = target
        let url = URL(fileURLWithPath: target)
        let folder = url.deletingLastPathComponent().path
        Self.removeStale(in: folder)
        var random = SystemRandomNumberGenerator()
        var candidate = "", fd: Int32 = -1, slot: Int?
        for _ in 0..<16 {
            candidate = folder + "/" + Self.name(for: url.lastPathComponent, pid: getpid(), random: random.next())
            // Listed before it exists, so that a signal right after it is created removes it.
            slot = SignalCleanup.register(candidate)
            fd = open(candidate, O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY | O_CLOEXEC, 0o666)
            if fd >= 0 { break }
            let code = errno
            if let slot { SignalCleanup.unregister(slot) }
            errno = code
            if code != EEXIST { break }
        }
        guard fd >= 0 else { throw GraftError(.io, "cannot write: \(String(cString: strerror(errno)))", file: target) }
        path = candidate
        descriptor = fd
        self.slot = slot
    }

    /// Appends `data` to the file.
    public func write(_ data: Data) throws {
        try data.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = Glibc.write(descriptor, raw.baseAddress! + done, raw.count - done)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw failure(errno) }
                done += n
            }
        }
    }

    /// Syncs the file to disk and renames it over the target (the folder is synced too).
    ///
    /// - Parameter beforeRenaming: called after the sync, right before the rename.
    public func commit(beforeRenaming: () -> Void = {}) throws {
        precondition(!done, "a temporary file is committed once")
        // What is renamed must be the file created here, not one put at its name since.
        var mine = stat(), there = stat()
        guard fsync(descriptor) == 0 else { throw failure(errno) }
        guard fstat(descriptor, &mine) == 0, lstat(path, &there) == 0 else { throw failure(errno) }
        guard mine.st_dev == there.st_dev, mine.st_ino == there.st_ino else {
            throw GraftError(.io, "cannot write: the temporary file \(path) was replaced while it was written", file: target)
        }
        beforeRenaming()
        guard rename(path, target) == 0 else { throw failure(errno) }
        finish(unlinking: false)
        let folder = open(URL(fileURLWithPath: target).deletingLastPathComponent().path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if folder >= 0 {
            fsync(folder)
            close(folder)
        }
    }

    /// Removes the file without touching the target.
    public func discard() {
        if !done { finish(unlinking: true) }
    }

    deinit { discard() }

    private func finish(unlinking: Bool) {
        done = true
        close(descriptor)
        if unlinking { unlink(path) }
        if let slot { SignalCleanup.unregister(slot) }
    }

    private func failure(_ code: Int32) -> GraftError {
        GraftError(.io, "cannot write: \(String(cString: strerror(code)))", file: target)
    }

    // MARK: - Names

    static let marker = ".graft-"
    static let suffix = ".tmp"

    /// `.NAME.graft-PID-RANDOM.tmp`, NAME cut so the whole stays within a file name's 255 bytes.
    static func name(for base: String, pid: pid_t, random: UInt64) -> String {
        var kept = Substring(base)
        while kept.utf8.count > 200 { kept = kept.dropLast() }
        let hex = String(random, radix: 16)
        return "." + kept + marker + "\(pid)-" + String(repeating: "0", count: 16 - hex.count) + hex + suffix
    }

    /// The process id in a temporary file's name of this scheme, or nil for any other name.
    static func pid(inName name: String) -> pid_t? {
        guard name.hasPrefix("."), name.hasSuffix(suffix), let marked = name.range(of: marker, options: .backwards) else { return nil }
        let fields = name[marked.upperBound..<name.index(name.endIndex, offsetBy: -suffix.count)].split(separator: "-", omittingEmptySubsequences: false)
        guard fields.count == 2, fields[1].count == 16, fields[1].allSatisfy(\.isHexDigit), let pid = pid_t(fields[0]), pid > 0 else { return nil }
        return pid
    }

    /// Removes this scheme's temporary files in `folder` whose process has ended.
    static func removeStale(in folder: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return }
        for name in names {
            guard let pid = pid(inName: name), pid != getpid() else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH { unlink(folder + "/" + name) }
        }
    }
}
