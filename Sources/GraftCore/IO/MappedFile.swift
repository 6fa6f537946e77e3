import Foundation

/// A regular file mapped read-only into memory; tensors borrow slices of it and keep it alive.
///
/// The file is opened without blocking and checked to be a regular file before anything is read,
/// so a FIFO, a device or a folder given as a model is refused at once instead of hanging.
///
/// While it lives, the mapping is listed for `SignalCleanup`: a file truncated by someone else
/// while it is read faults (SIGBUS) on the missing pages, which then ends the process with one
/// line naming the file instead of a crash.
public final class MappedFile: @unchecked Sendable {
    public let bytes: UnsafeMutableRawPointer
    public let size: Int
    private var slot: Int?

    /// - Parameter populate: map every page at once (`MAP_POPULATE`): for files whose every byte
    ///   is read right away (a model's weights), one call is far faster than a fault per page.
    /// - Throws: `GraftError` naming the file when it cannot be opened or mapped, or is not a
    ///   regular file.
    public init(path: String, populate: Bool = true) throws {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            throw GraftError(.io, "cannot open: \(String(cString: strerror(errno)))", file: path)
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw GraftError(.io, "cannot open: \(String(cString: strerror(errno)))", file: path)
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw GraftError(.io, (info.st_mode & S_IFMT) == S_IFDIR ? "a folder, not a file" : "not a regular file", file: path)
        }
        size = Int(info.st_size)
        if size == 0 {
            bytes = UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 64)
            return
        }
        let flags = MAP_PRIVATE | (populate ? MAP_POPULATE : 0)
        guard let p = mmap(nil, size, PROT_READ, flags, fd, 0), p != MAP_FAILED else {
            throw GraftError(.io, "cannot map into memory: \(String(cString: strerror(errno)))", file: path)
        }
        bytes = p
        slot = SignalCleanup.registerMapping(path, start: p, count: size)
        if let victim = getenv(Self.truncationHook), String(cString: victim) == path { truncate(path, 0) }
    }

    /// A test hook: the file this names is truncated right after it is mapped, so that the tests
    /// can check, deterministically, what reading a file that shrinks under the mapping does.
    static let truncationHook = "GRAFT_TEST_TRUNCATE_AFTER_MAPPING"

    /// The bytes `range` of the file, checked to lie inside it.
    public func bytes(in range: Range<Int>) throws -> UnsafeRawBufferPointer {
        guard range.lowerBound >= 0, range.upperBound <= size else {
            throw GraftError(.badInput, "bytes \(range.lowerBound)..<\(range.upperBound) lie past the end of the file (\(size) bytes)")
        }
        return UnsafeRawBufferPointer(start: bytes + range.lowerBound, count: range.count)
    }

    deinit {
        if let slot { SignalCleanup.unregisterMapping(slot) }
        if size == 0 { bytes.deallocate() } else { munmap(bytes, size) }
    }
}
