import Foundation
import GraftCore
import GraftTestSupport
@testable import GraftVision
import XCTest

final class SyntheticImagesTests: XCTestCase {
    func testKaggleSetLoadsDecodesAndSeparatesByColour() throws {
        let dir = try TemporaryDirectory()
        let paths = try SyntheticImages.write(to: dir.path, perClass: 10, seed: 3)
        XCTAssertEqual(paths.count, 20)
        XCTAssertEqual(paths.filter { $0.hasSuffix(".png") }.count, 4)
        let splits = try ImageDataset.load(dir.path)
        XCTAssertEqual(splits.layout, .kaggleNames(folder: dir.path + "/train"))
        XCTAssertEqual(splits.train.classNames, SyntheticImages.classNames)
        let all = [splits.train, splits.validation!, splits.test!].flatMap { $0.samples }
        XCTAssertEqual(all.count, 20)

        let batch = ImageBatch.load(all)
        XCTAssertTrue(batch.skipped.isEmpty, "\(batch.skipped)")
        let plane = 224 * 224, floats = batch.images.floats
        for (row, s) in batch.samples.enumerated() {
            func mean(_ c: Int) -> Float {
                let start = (row * 3 + c) * plane
                return floats[start..<(start + plane)].reduce(0, +) / Float(plane)
            }
            // Cats warm, dogs cool: a linear read of the mean colour tells them apart.
            let warmth = mean(0) - mean(2)
            XCTAssertTrue(s.label == 0 ? warmth > 0.3 : warmth < -0.3, "\(s.path): red - blue = \(warmth)")
        }
    }

    func testSameSeedSameFiles() throws {
        let a = try TemporaryDirectory(), b = try TemporaryDirectory(), c = try TemporaryDirectory()
        let pa = try SyntheticImages.write(to: a.path, perClass: 3, seed: 1, layout: .classFolders)
        let pb = try SyntheticImages.write(to: b.path, perClass: 3, seed: 1, layout: .classFolders)
        let pc = try SyntheticImages.write(to: c.path, perClass: 3, seed: 2, layout: .classFolders)
        XCTAssertEqual(pa.first, a.path + "/cat/0.jpg")
        XCTAssertEqual(try ImageDataset.load(a.path).layout, .classFolders)
        for (x, (y, z)) in zip(pa, zip(pb, pc)) {
            XCTAssertEqual(FileManager.default.contents(atPath: x), FileManager.default.contents(atPath: y))
            XCTAssertNotEqual(FileManager.default.contents(atPath: x), FileManager.default.contents(atPath: z))
        }
    }

    func testUnwritableFolderIsAnError() throws {
        let dir = try TemporaryDirectory()
        XCTAssertTrue(FileManager.default.createFile(atPath: dir.file("file"), contents: Data()))
        XCTAssertThrowsError(try SyntheticImages.write(to: dir.file("file"), perClass: 1)) {
            XCTAssertEqual(($0 as? GraftError)?.description, "\(dir.file("file"))/train: cannot create the folder")
        }
    }
}
