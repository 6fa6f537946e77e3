import Foundation
import GraftCore
import GraftVision

/// Trunk features kept on disk so that every run and epoch after the first costs only the head.
///
/// One file per image set, `features-<key>.bin` in `directory`, whose key hashes the trunk (its
/// nodes and weights), the transform, and each image's path, label, size and modification time:
/// a changed model, transform or image gives another key. Files are written atomically in
/// `BlobFile` form with a checksum, so a truncated or corrupted file is detected and rebuilt.
public struct FeatureCache: Sendable {
    public let directory: String

    public init(directory: String) {
        self.directory = directory
    }

    struct Meta: Codable, Equatable {
        var key: String
        var featureValue: String
        var featureCount: Int
        var sourceCount: Int
        var unreadable: [UnreadableImage]
    }

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
        guard m.key == key, m.featureValue == featureValue, m.featureCount == featureCount, m.sourceCount == samples.count,
              let values = blob.floats["features"], let rows = blob.integers["rows"],
              values.count == rows.count * featureCount, rows.allSatisfy({ $0 >= 0 && Int($0) < samples.count }) else {
            return .unusable("it does not hold these images' features")
        }
        let kept = rows.map { samples[Int($0)] }
        return .hit(FeatureSet(features: Matrix(rows: kept.count, columns: featureCount, values: values),
                               labels: kept.map(\.label), files: kept.map(\.path), skipped: m.unreadable))
    }

    /// Writes `set` (the features of `samples`, less the unreadable ones) under `key`.
    func store(_ set: FeatureSet, key: String, samples: [ImageSample], featureValue: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw GraftError(.io, "cannot create the feature cache folder", file: directory)
        }
        var position: [String: [Int]] = [:]
        for (i, s) in samples.enumerated().reversed() { position[s.path, default: []].append(i) }
        let rows = set.files.map { Int64(position[$0]!.removeLast()) }
        var blob = BlobFile(kind: "feature cache", meta: Meta(key: key, featureValue: featureValue, featureCount: set.features.columns,
                                                              sourceCount: samples.count, unreadable: set.skipped))
        blob.floats["features"] = set.features.values
        blob.integers["rows"] = rows
        try blob.write(to: path(forKey: key))
    }
}
