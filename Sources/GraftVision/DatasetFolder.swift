import Foundation
import GraftCore

/// Finds a data folder's layout and lists its images (see `ImageDataset.load`).
struct DatasetFolder {
    let root: String
    private let fileManager = FileManager.default

    static let trainNames = ["train"]
    static let validationNames = ["val", "valid", "validation"]
    static let testNames = ["test"]

    init(_ root: String) {
        self.root = root.count > 1 && root.hasSuffix("/") ? String(root.dropLast()) : root
    }

    func load(seed: UInt64, proportions: SplitProportions) throws -> ImageDataset.Splits {
        let folders = try subfolders(of: root)
        let splitNames = Self.trainNames + Self.validationNames + Self.testNames
        if folders.contains("train") {
            let train = root + "/train"
            if try hasClassFolders(train) {
                return try splitFolders(seed: seed, proportions: proportions)
            }
            if let pool = try kaggleNames(in: train) {
                return split(pool, seed: seed, proportions: proportions, layout: .kaggleNames(folder: train))
            }
            throw GraftError(.badInput, "holds neither class folders nor Kaggle-named images (cat.1.jpg)", file: train)
        }
        if let stray = folders.first(where: { splitNames.contains($0) }) {
            throw GraftError(.badInput, "has \(stray)/ but no train/ folder beside it", file: root)
        }
        if try hasClassFolders(root) {
            let pool = try classFolders(root, classes: nil)
            return split(pool, seed: seed, proportions: proportions, layout: .classFolders)
        }
        if let pool = try kaggleNames(in: root) {
            return split(pool, seed: seed, proportions: proportions, layout: .kaggleNames(folder: root))
        }
        throw GraftError(.badInput, "no images: expected class folders (train/cat/1.jpg or cat/1.jpg) or Kaggle names (cat.1.jpg) with extension .jpg, .jpeg or .png", file: root)
    }

    // MARK: - Layouts

    private func splitFolders(seed: UInt64, proportions: SplitProportions) throws -> ImageDataset.Splits {
        let folders = try subfolders(of: root)
        let train = try classFolders(root + "/train", classes: nil)
        func optional(_ names: [String]) throws -> ImageDataset? {
            guard let name = names.first(where: folders.contains) else { return nil }
            return try classFolders(root + "/" + name, classes: train.classNames)
        }
        let validation = try optional(Self.validationNames)
        let test = try optional(Self.testNames)
        if let validation {
            return .init(train: train, validation: validation, test: test, layout: .splitFolders(validationCarved: false))
        }
        // The validation share of what is not test, so train : validation stays the reference's.
        let carve = SplitProportions(validation: proportions.validation / (1 - proportions.test), test: 0)
        let parts = carve.split(train, seed: seed)
        return .init(train: parts.train, validation: parts.validation, test: test, layout: .splitFolders(validationCarved: true))
    }

    private func split(_ pool: ImageDataset, seed: UInt64, proportions: SplitProportions,
                       layout: ImageDataset.Layout) -> ImageDataset.Splits {
        let parts = proportions.split(pool, seed: seed)
        return .init(train: parts.train, validation: parts.validation, test: parts.test, layout: layout)
    }

    /// `ImageFolder`: each subfolder is a class, its images (in subfolders too) its samples.
    /// With `classes`, the subfolders must be among them and labels index them.
    private func classFolders(_ dir: String, classes: [String]?) throws -> ImageDataset {
        let found = try subfolders(of: dir)
        let names = classes ?? found
        var samples: [ImageSample] = []
        for folder in found {
            guard let label = names.firstIndex(of: folder) else {
                throw GraftError(.badInput, "class '\(folder)' is not among the training classes (\(names.joined(separator: ", ")))", file: dir + "/" + folder)
            }
            let files = try images(under: dir + "/" + folder)
            guard !files.isEmpty else {
                throw GraftError(.badInput, "class folder holds no .jpg, .jpeg or .png images", file: dir + "/" + folder)
            }
            samples += files.map { ImageSample(path: $0, label: label) }
        }
        return ImageDataset(classNames: names, samples: samples)
    }

    /// Kaggle's `class.n.jpg` files directly in `dir`, or nil when there are none.
    private func kaggleNames(in dir: String) throws -> ImageDataset? {
        var labelled: [(name: String, path: String)] = []
        for file in try entries(of: dir) where isImage(file) && isFile(dir + "/" + file) {
            let parts = file.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count >= 3, !parts[0].isEmpty else { continue }
            labelled.append((String(parts[0]), dir + "/" + file))
        }
        guard !labelled.isEmpty else { return nil }
        let classNames = Set(labelled.map(\.name)).sorted(by: pythonOrder)
        let samples = labelled.map { ImageSample(path: $0.path, label: classNames.firstIndex(of: $0.name)!) }
            .sorted { $0.label != $1.label ? $0.label < $1.label : pythonOrder($0.path, $1.path) }
        return ImageDataset(classNames: classNames, samples: samples)
    }

    // MARK: - Listing

    private func hasClassFolders(_ dir: String) throws -> Bool {
        try subfolders(of: dir).contains { try !images(under: dir + "/" + $0).isEmpty }
    }

    /// The image files below `dir`, as `sorted(os.walk(dir))` visits them: folders in path
    /// order, files sorted within each.
    private func images(under dir: String) throws -> [String] {
        var byFolder: [String: [String]] = [:]
        var pending = [dir]
        var seen: Set<String> = []
        while let folder = pending.popLast() {
            // Followed links could loop; visit each real folder once.
            guard seen.insert((folder as NSString).resolvingSymlinksInPath).inserted else { continue }
            for name in try entries(of: folder) {
                let path = folder + "/" + name
                if isFolder(path) {
                    pending.append(path)
                } else if isImage(name) {
                    byFolder[folder, default: []].append(name)
                }
            }
        }
        return byFolder.keys.sorted(by: pythonOrder).flatMap { folder in
            byFolder[folder]!.sorted(by: pythonOrder).map { folder + "/" + $0 }
        }
    }

    private func subfolders(of dir: String) throws -> [String] {
        try entries(of: dir).filter { isFolder(dir + "/" + $0) }.sorted(by: pythonOrder)
    }

    /// The names in `dir`, hidden ones left out.
    private func entries(of dir: String) throws -> [String] {
        do {
            return try fileManager.contentsOfDirectory(atPath: dir).filter { !$0.hasPrefix(".") }
        } catch {
            throw GraftError(.io, "cannot list the folder", file: dir)
        }
    }

    private func isImage(_ name: String) -> Bool { ImageDataset.isImageName(name) }

    private func isFolder(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return fileManager.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    private func isFile(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return fileManager.fileExists(atPath: path, isDirectory: &isDirectory) && !isDirectory.boolValue
    }
}

/// Python's string order (by code point), which `sorted()` in torchvision's `ImageFolder` uses.
func pythonOrder(_ a: String, _ b: String) -> Bool {
    a.unicodeScalars.lexicographicallyPrecedes(b.unicodeScalars)
}
