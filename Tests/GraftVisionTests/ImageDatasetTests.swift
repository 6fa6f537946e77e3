import Foundation
import GraftCore
import GraftTestSupport
@testable import GraftVision
import XCTest

final class ImageDatasetTests: XCTestCase {
    /// Creates empty files (listing never decodes) under a fresh folder.
    func folder(_ files: [String]) throws -> TemporaryDirectory {
        let dir = try TemporaryDirectory()
        for file in files {
            let path = dir.file(file)
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data()))
        }
        return dir
    }

    func relative(_ dataset: ImageDataset?, _ dir: TemporaryDirectory) -> [String] {
        (dataset?.samples ?? []).map { "\(dataset!.classNames[$0.label]):" + String($0.path.dropFirst(dir.path.count + 1)) }
    }

    func testSplitFoldersReadLikeImageFolder() throws {
        let dir = try folder([
            "train/dog/b.jpg", "train/dog/a.PNG", "train/cat/2.jpeg", "train/cat/10.jpg",
            "train/cat/sub/1.jpg", "train/cat/sub b/0.jpg", "train/cat/notes.txt", "train/cat/.hidden.jpg",
            "train/.ipynb_checkpoints/x.jpg", "val/cat/v.jpg", "val/dog/w.jpg", "test/dog/t.jpg",
        ])
        let splits = try ImageDataset.load(dir.path)
        XCTAssertEqual(splits.layout, .splitFolders(validationCarved: false))
        XCTAssertEqual(splits.train.classNames, ["cat", "dog"])
        // sorted(os.walk()): a folder's own files, then its subfolders in path order.
        XCTAssertEqual(relative(splits.train, dir), [
            "cat:train/cat/10.jpg", "cat:train/cat/2.jpeg", "cat:train/cat/sub/1.jpg", "cat:train/cat/sub b/0.jpg",
            "dog:train/dog/a.PNG", "dog:train/dog/b.jpg",
        ])
        XCTAssertEqual(relative(splits.validation, dir), ["cat:val/cat/v.jpg", "dog:val/dog/w.jpg"])
        // A test set without cats keeps the training labels.
        XCTAssertEqual(splits.test?.samples.map(\.label), [1])
        XCTAssertEqual(splits.test?.classNames, ["cat", "dog"])
    }

    func testMissingValidationIsCarvedFromTrain() throws {
        let files = (0..<50).flatMap { ["train/cat/\($0).jpg", "train/dog/\($0).jpg"] }
        let dir = try folder(files)
        let splits = try ImageDataset.load(dir.path)
        XCTAssertEqual(splits.layout, .splitFolders(validationCarved: true))
        // 2,002 / 20,400 of 50 is 4.9: 5 per class.
        XCTAssertEqual(splits.validation?.classCounts, [5, 5])
        XCTAssertEqual(splits.train.classCounts, [45, 45])
        XCTAssertNil(splits.test)
    }

    func testKaggleNamesInTrainOrInTheFolderItself() throws {
        let names = (0..<20).flatMap { ["cat.\($0).jpg", "dog.\($0).jpg"] } + ["123.jpg", "readme.txt"]
        for prefix in ["train/", ""] {
            // Kaggle's archive has an unlabelled test1/ beside train/.
            let dir = try folder(names.map { prefix + $0 } + (prefix.isEmpty ? [] : ["test1/1.jpg"]))
            let splits = try ImageDataset.load(dir.path)
            let folderPath = prefix.isEmpty ? dir.path : dir.path + "/train"
            XCTAssertEqual(splits.layout, .kaggleNames(folder: folderPath))
            XCTAssertEqual(splits.train.classNames, ["cat", "dog"])
            // Per class of 20: round(1.6) = 2 validation, round(3.68) = 4 test, 14 train.
            XCTAssertEqual(splits.train.classCounts, [14, 14])
            XCTAssertEqual(splits.validation?.classCounts, [2, 2])
            XCTAssertEqual(splits.test?.classCounts, [4, 4])
            let all = [splits.train, splits.validation!, splits.test!].flatMap { $0.samples }
            XCTAssertEqual(Set(all.map(\.path)).count, 40, "the parts are disjoint and cover the pool")
            XCTAssertTrue(all.allSatisfy { URL(fileURLWithPath: $0.path).lastPathComponent.hasPrefix(["cat", "dog"][$0.label] + ".") })
        }
    }

    func testClassFoldersWithoutSplitsAreSplit() throws {
        let dir = try folder((0..<30).flatMap { ["Cat/\($0).jpg", "Dog/\($0).png"] })
        let splits = try ImageDataset.load(dir.path)
        XCTAssertEqual(splits.layout, .classFolders)
        XCTAssertEqual(splits.train.classNames, ["Cat", "Dog"])
        XCTAssertEqual(splits.validation?.classCounts, [2, 2])  // round(2.4)
        XCTAssertEqual(splits.test?.classCounts, [6, 6])        // round(5.52)
    }

    func testReferenceProportionsGiveTheReferenceSplit() {
        let samples = (0..<25_000).map { ImageSample(path: "\($0 % 2 == 0 ? "cat" : "dog").\($0 / 2).jpg", label: $0 % 2) }
        let pool = ImageDataset(classNames: ["cat", "dog"], samples: samples)
        let parts = SplitProportions.reference.split(pool, seed: 0)
        XCTAssertEqual([parts.train.count, parts.validation.count, parts.test.count], [18_398, 2_002, 4_600])
        XCTAssertEqual(parts.train.classCounts, [9_199, 9_199])
        XCTAssertEqual(parts.validation.classCounts, [1_001, 1_001])
        XCTAssertEqual(parts.test.classCounts, [2_300, 2_300])
        XCTAssertEqual(Set((parts.train.samples + parts.validation.samples + parts.test.samples).map(\.path)).count, 25_000)

        let again = SplitProportions.reference.split(pool, seed: 0)
        XCTAssertEqual(again.test, parts.test, "the same seed gives the same split")
        let other = SplitProportions.reference.split(pool, seed: 1)
        XCTAssertNotEqual(other.test, parts.test, "another seed gives another split")
        // Each part keeps the dataset's order.
        let position = Dictionary(uniqueKeysWithValues: samples.enumerated().map { ($1.path, $0) })
        XCTAssertEqual(parts.test.samples.map { position[$0.path]! }, parts.test.samples.map { position[$0.path]! }.sorted())
    }

    func testSplitsArePinnedAcrossToolchains() throws {
        // The draws are our own arithmetic, not the standard library's: these picks must not move.
        let samples = (0..<20).map { ImageSample(path: "cat.\($0).jpg", label: 0) }
        let parts = SplitProportions.reference.split(ImageDataset(classNames: ["cat"], samples: samples), seed: 0)
        XCTAssertEqual(parts.validation.samples.map(\.path) + parts.test.samples.map(\.path),
                       Self.pinnedPicks, "validation then test picks of seed 0")
    }

    static let pinnedPicks = ["cat.7.jpg", "cat.9.jpg", "cat.1.jpg", "cat.5.jpg", "cat.14.jpg", "cat.18.jpg"]

    func testErrors() throws {
        func message(_ dir: String) -> String? {
            do {
                _ = try ImageDataset.load(dir)
                return nil
            } catch {
                return (error as? GraftError)?.description
            }
        }
        let missing = try TemporaryDirectory().file("nothing-here")
        XCTAssertEqual(message(missing), "\(missing): no such folder")

        let notes = try folder(["readme.txt", "cat/readme.md"])
        XCTAssertEqual(message(notes.file("readme.txt")), "\(notes.file("readme.txt")): not a folder of images")
        XCTAssertEqual(message(notes.path), "\(notes.path): no images: expected class folders (train/cat/1.jpg or cat/1.jpg) or Kaggle names (cat.1.jpg) with extension .jpg, .jpeg or .png")

        let one = try folder(["train/cat.1.jpg", "train/cat.2.jpg"])
        XCTAssertEqual(message(one.path), "\(one.path): only one class ('cat', 2 images): a classifier needs at least two")

        let empty = try folder(["cat/1.jpg", "dog/notes.txt"])
        XCTAssertEqual(message(empty.path), "\(empty.file("dog")): class folder holds no .jpg, .jpeg or .png images")

        let unknown = try folder(["train/cat/1.jpg", "train/dog/1.jpg", "val/horse/1.jpg"])
        XCTAssertEqual(message(unknown.path), "\(unknown.file("val/horse")): class 'horse' is not among the training classes (cat, dog)")

        let noTrain = try folder(["val/cat/1.jpg", "val/dog/1.jpg"])
        XCTAssertEqual(message(noTrain.path), "\(noTrain.path): has val/ but no train/ folder beside it")

        let neither = try folder(["train/notes.txt"])
        XCTAssertEqual(message(neither.path), "\(neither.file("train")): holds neither class folders nor Kaggle-named images (cat.1.jpg)")
    }
}
