import Foundation
import GraftCore
import GraftVision

/// Trunk features kept on disk so that every run and epoch after the first costs only the head.
///
/// One file per image set, `features-<key>.bin` in `directory`, whose key hashes the trunk (its
/// nodes and weights), the transform, and each image's path, label, size and modification time:
/// a changed model, transform or image gives another key. Files are written atomically in
/// `BlobFile` form with a checksum, so a truncated or corrupted file is detected and rebuilt.
///
/// While the features are computed, every `chunkSize` images (and whatever is done when the run
/// is stopped) go to a chunk file `features-<key>.part-<start>.bin` of the same form, so an
/// interrupted extraction resumes after the last intact chunk; once all are done they become the
/// one file and the chunks are removed.
public struct FeatureCache: Sendable {
    public let directory: String
    /// Images per chunk written while the features are computed (rounded up to whole batches).
    public var chunkSize: Int

    public init(directory: String, chunkSize: Int = 1024) {
        precondition(chunkSize > 0, "the chunk size must be positive")
        self.directory = directory
        self.chunkSize = chunkSize
    }

    struct Meta: Codable, Equatable {
        var key: String
        var featureValue: String
        var featureCount: Int
        var sourceCount: Int
        var unreadable: [UnreadableImage]

        func describes(key: String, featureValue: String, featureCount: Int, samples: [ImageSample]) -> Bool {
            self.key == key && self.featureValue == featureValue && self.featureCount == featureCount && sourceCount == samples.count
        }
    }

    /// A chunk holds the readable images of `samples[start..<end]` (its rows) and lists the others
    /// (in `cache.unreadable`).
    struct ChunkMeta: Codable, Equatable {
        var cache: Meta
        var start: Int
        var end: Int
    }

    static let chunkKind = "feature cache chunk"

    /// The cache key of `samples` seen through `trunkKey` and `transform`.
    static func key(trunkKey: String, transform: String, samples: [ImageSample]) -> String {
        var h = ContentHash()
        h.combine("graft-features-1")
        h.combine(trunkKey)
        h.combine(transform)
        h.combine(samples.count)
        for s in samples {
            h.combine(s.path)
            h.combine(s.label)
            var info = stat()
            if stat(s.path, &info) == 0 {
                h.combine(Int(info.st_size))
                h.combine(Int(info.st_mtim.tv_sec))
                h.combine(Int(info.st_mtim.tv_nsec))
            } else {
                h.combine(-1)
            }
        }
        return h.hex
    }

    func path(forKey key: String) -> String {
        (directory as NSString).appendingPathComponent("features-\(key).bin")
    }

    /// The cached features for `key`, or why there are none usable.
    enum Lookup {
        case hit(FeatureSet)
        case missing
        case unusable(String)
    }

    func lookup(key: String, samples: [ImageSample], featureValue: String, featureCount: Int) -> Lookup {
        let file = path(forKey: key)
        guard FileManager.default.fileExists(atPath: file) else { return .missing }
        let blob: BlobFile<Meta>
        do {
            blob = try BlobFile<Meta>.read(file, kind: "feature cache")
        } catch let error as GraftError {
            return .unusable(error.message)
        } catch {
            return .unusable("\(error)")
        }
        let m = blob.meta
        guard m.describes(key: key, featureValue: featureValue, featureCount: featureCount, samples: samples), let values = blob.floats["features"], let rows = blob.integers["rows"],
              values.count == rows.count * featureCount, rows.allSatisfy({ $0 >= 0 && Int($0) < samples.count }) else {
            return .unusable("it does not hold these images' features")
        }
        let kept = rows.map { samples[Int($0)] }
        return .hit(FeatureSet(features: Matrix(rows: kept.count, columns: featureCount, values: values),
                               labels: kept.map(\.label), files: kept.map(\.path), skipped: m.unreadable))
    }

    /// Writes `set` (the features of `samples`, less the unreadable ones) under `key`; `rows`
    /// gives the index in `samples` of each of its rows. Removes the key's chunks.
    func store(_ set: FeatureSet, rows: [Int64], key: String, samples: [ImageSample], featureValue: String) throws {
        try createDirectory()
        var blob = BlobFile(kind: "feature cache", meta: Meta(key: key, featureValue: featureValue, featureCount: set.features.columns,
                                                              sourceCount: samples.count, unreadable: set.skipped))
        blob.floats["features"] = set.features.values
        blob.integers["rows"] = rows
        try blob.write(to: path(forKey: key))
        removeChunks(key: key)
    }

    /// The extraction of `samples` as far as it got: the features done, in order, from the run
    /// stopped before.
    struct Progress {
        /// Samples `0..<end` are done.
        var end = 0
        var values: [Float] = []
        var rows: [Int64] = []
        var skipped: [UnreadableImage] = []
    }

    func chunkPath(forKey key: String, start: Int) -> String {
        (directory as NSString).appendingPathComponent("features-\(key).part-\(start).bin")
    }

    /// The chunk files of `key` present in the folder.
    private func chunkFiles(key: String) -> [String] {
        let prefix = "features-\(key).part-"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasPrefix(prefix) && $0.hasSuffix(".bin") }.map { (directory as NSString).appendingPathComponent($0) }
    }

    /// The chunks of `key` that follow one another from the first sample; reading stops at the
    /// first one missing, unreadable or not of these samples (it is computed again).
    func resume(key: String, samples: [ImageSample], featureValue: String, featureCount: Int) -> Progress {
        var done = Progress()
        while done.end < samples.count {
            let file = chunkPath(forKey: key, start: done.end)
            guard FileManager.default.fileExists(atPath: file),
                  let blob = try? BlobFile<ChunkMeta>.read(file, kind: Self.chunkKind) else { break }
            let m = blob.meta
            guard m.cache.describes(key: key, featureValue: featureValue, featureCount: featureCount, samples: samples),
                  m.start == done.end, m.end > m.start, m.end <= samples.count,
                  let values = blob.floats["features"], let rows = blob.integers["rows"],
                  values.count == rows.count * featureCount, rows.count + m.cache.unreadable.count == m.end - m.start,
                  zip(rows, rows.dropFirst()).allSatisfy({ $0 < $1 }), rows.allSatisfy({ $0 >= m.start && Int($0) < m.end }) else { break }
            done.values += values
            done.rows += rows
            done.skipped += m.cache.unreadable
            done.end = m.end
        }
        return done
    }

    /// Writes the features of `samples[start..<end]` as a chunk of `key`.
    func storeChunk(values: [Float], rows: [Int64], skipped: [UnreadableImage], start: Int, end: Int, key: String,
                    samples: [ImageSample], featureValue: String, featureCount: Int) throws {
        try createDirectory()
        let meta = Meta(key: key, featureValue: featureValue, featureCount: featureCount, sourceCount: samples.count, unreadable: skipped)
        var blob = BlobFile(kind: Self.chunkKind, meta: ChunkMeta(cache: meta, start: start, end: end))
        blob.floats["features"] = values
        blob.integers["rows"] = rows
        try blob.write(to: chunkPath(forKey: key, start: start))
    }

    /// Removes the chunks of `key` (once its one file is written).
    func removeChunks(key: String) {
        for file in chunkFiles(key: key) { try? FileManager.default.removeItem(atPath: file) }
    }

    private func createDirectory() throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw GraftError(.io, "cannot create the feature cache folder", file: directory)
        }
    }
}
