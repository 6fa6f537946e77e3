import CHDF5
import Foundation
import GraftCore

/// Process-wide use of libhdf5: one caller at a time (a library built without thread safety
/// must not be entered twice), automatic error printing off, and the library's error stack
/// turned into one-line `GraftError`s.
enum HDF5Library {
    private static let lock = NSRecursiveLock()

    /// Runs `body` with the library to itself and its error printing silenced.
    ///
    /// HDF5 keeps its error-printing setting per thread in thread-safe builds, so it is switched
    /// off on every entry rather than once.
    static func withLibrary<R>(_ body: () throws -> R) throws -> R {
        lock.lock()
        defer { lock.unlock() }
        H5Eset_auto2(graft_h5e_default(), nil, nil)
        return try body()
    }

    /// Access properties that refuse to follow external links (links into another HDF5 file,
    /// which may name any file on disk): Graft reads only what is inside the model file. The
    /// target of the last refused link is kept in `refusedExternalLink` for the error. One list
    /// per kind of open call (objects, groups, datasets), each derived from link access.
    static let linkAccess = refusingExternalLinks(H5P_CLS_LINK_ACCESS_ID_g)
    static let groupAccess = refusingExternalLinks(H5P_CLS_GROUP_ACCESS_ID_g)
    static let datasetAccess = refusingExternalLinks(H5P_CLS_DATASET_ACCESS_ID_g)

    private static func refusingExternalLinks(_ propertyClass: @autoclosure () -> hid_t) -> hid_t {
        H5open()
        let access = H5Pcreate(propertyClass())
        H5Pset_elink_cb(access, { _, _, file, object, _, _, _ in
            HDF5Library.refusedExternalLink = "\(file.map { String(cString: $0) } ?? "?"):\(object.map { String(cString: $0) } ?? "?")"
            return -1
        }, nil)
        return access
    }

    /// `file:object` of the external link `linkAccess` last refused; read and cleared under the lock.
    nonisolated(unsafe) static var refusedExternalLink: String?

    /// Throws `message`, completed with the most specific message on HDF5's error stack, when
    /// `status` is negative (HDF5's failure value for every call that returns a status or an id).
    static func check<T: BinaryInteger>(_ status: T, kind: GraftError.Kind = .badInput,
                                        _ message: @autoclosure () -> String) throws {
        if status < 0 { throw failure(kind, message()) }
    }

    /// `message (detail)`, where `detail` is the innermost description HDF5 recorded; clears the
    /// stack so a later failure does not report this one's cause.
    static func failure(_ kind: GraftError.Kind, _ message: String) -> GraftError {
        let detail = innermostError()
        H5Eclear2(graft_h5e_default())
        return GraftError(kind, detail.map { "\(message) (\($0))" } ?? message)
    }

    private static func innermostError() -> String? {
        final class Found { var description: String? }
        let found = Found()
        let walker: H5E_walk2_t = { _, error, context in
            guard let error, let context else { return 0 }
            let found = Unmanaged<Found>.fromOpaque(context).takeUnretainedValue()
            if found.description == nil, let text = error.pointee.desc {
                found.description = String(cString: text)
            }
            return 0
        }
        _ = withExtendedLifetime(found) {
            H5Ewalk2(graft_h5e_default(), H5E_WALK_UPWARD, walker, Unmanaged.passUnretained(found).toOpaque())
        }
        return found.description
    }

    /// The HDF5 superblock signature, found at offset 0 or, after a user block, at 512, 1024, ...
    private static let signature: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]

    /// Whether the file begins (or, after a user block, continues) with an HDF5 superblock.
    ///
    /// - Throws: `GraftError` (`.io`) when the file cannot be read.
    static func hasSignature(_ path: String) throws -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw GraftError(.io, "cannot read the file")
        }
        defer { try? handle.close() }
        let size = (try? handle.seekToEnd()) ?? 0
        var offset: UInt64 = 0
        while offset + UInt64(signature.count) <= size {
            try? handle.seek(toOffset: offset)
            if let bytes = try? handle.read(upToCount: signature.count), [UInt8](bytes) == signature { return true }
            offset = offset == 0 ? 512 : offset * 2
        }
        return false
    }
}
