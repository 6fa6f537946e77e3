import Foundation
import GraftCore

/// One labelled image file.
public struct ImageSample: Sendable, Hashable {
    public var path: String
    /// The index of its class in the dataset's `classNames`.
    public var label: Int

    public init(path: String, label: Int) {
        self.path = path
        self.label = label
    }
}

/// A list of labelled image files, in torchvision `ImageFolder` order: by class, then by path.
public struct ImageDataset: Sendable, Equatable {
    /// The class names, sorted; a sample's label indexes this list.
    public var classNames: [String]
    public var samples: [ImageSample]

    public init(classNames: [String], samples: [ImageSample]) {
        precondition(samples.allSatisfy { classNames.indices.contains($0.label) }, "a sample's label has no class name")
        self.classNames = classNames
        self.samples = samples
    }

    public var count: Int { samples.count }

    /// How many samples each class has, indexed like `classNames`.
    public var classCounts: [Int] {
        var counts = [Int](repeating: 0, count: classNames.count)
        for s in samples { counts[s.label] += 1 }
        return counts
    }

    /// The file extensions read as images, compared case-insensitively.
    public static let imageExtensions: Set<String> = ["jpg", "jpeg", "png"]

    /// Whether a file name ends in one of `imageExtensions` (any case).
    public static func isImageName(_ name: String) -> Bool {
        guard let dot = name.lastIndex(of: ".") else { return false }
        return imageExtensions.contains(name[name.index(after: dot)...].lowercased())
    }

    /// The datasets found in a folder, in one of these layouts:
    ///
    /// - `DIR/train/<class>/…`, with `DIR/val/<class>/…` (or `valid/`, `validation/`) and
    ///   `DIR/test/<class>/…` beside it when present: used as given, except that a missing
    ///   validation set is carved from `train/` (the reference's 2,002 : 18,398 share);
    /// - `DIR/<class>/…`: one pool, split as below;
    /// - Kaggle Dogs vs. Cats, `DIR/train/cat.123.jpg` or `DIR/cat.123.jpg`: the class is the name
    ///   up to its first dot (files without one, like Kaggle's unlabelled `test1/1.jpg`, are
    ///   ignored); one pool, split as below.
    ///
    /// Class folders are read like torchvision's `ImageFolder` (subfolders included, files
    /// sorted); hidden files and folders are ignored. A pool is split per class, so each split
    /// keeps the class balance: `proportions` of each class's files, drawn by `seed`, go to
    /// validation and test, the rest to training.
    ///
    /// - Throws: `GraftError` naming the folder when it does not exist, holds no images, has a
    ///   class folder without images, a validation or test class unknown to training, or only
    ///   one class.
    public static func load(_ dir: String, seed: UInt64 = 0, proportions: SplitProportions = .reference) throws -> Splits {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDirectory) else {
            throw GraftError(.io, "no such folder", file: dir)
        }
        guard isDirectory.boolValue else { throw GraftError(.badInput, "not a folder of images", file: dir) }
        let splits = try DatasetFolder(dir).load(seed: seed, proportions: proportions)
        guard splits.train.classNames.count >= 2 else {
            let name = splits.train.classNames.first ?? ""
            throw GraftError(.badInput, "only one class ('\(name)', \(splits.train.count) images): a classifier needs at least two", file: dir)
        }
        return splits
    }

    /// What ``load(_:seed:proportions:)`` found: the datasets and the layout they came from.
    public struct Splits: Sendable, Equatable {
        public var train: ImageDataset
        public var validation: ImageDataset?
        public var test: ImageDataset?
        public var layout: Layout
    }

    /// How a data folder was laid out.
    public enum Layout: Sendable, Equatable, CustomStringConvertible {
        /// `train/`, `val/`, `test/` class folders; `validationCarved` when `val/` was missing and
        /// the validation set was split from `train/`.
        case splitFolders(validationCarved: Bool)
        /// Class folders without split folders, split by proportions.
        case classFolders
        /// Kaggle-style `class.n.jpg` names in `folder`, split by proportions.
        case kaggleNames(folder: String)

        public var description: String {
            switch self {
            case .splitFolders(let carved):
                return "split folders (train/, val/, test/)" + (carved ? ", validation split from train/" : "")
            case .classFolders: return "class folders, split by proportions"
            case .kaggleNames(let folder): return "Kaggle names (class.n.jpg) in \(folder), split by proportions"
            }
        }
    }
}
