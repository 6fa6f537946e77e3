import Foundation
import GraftCore
import GraftTestSupport
@testable import GraftVision
import XCTest

final class ImageBatchTests: XCTestCase {
    func sample(_ name: String, _ label: Int) -> ImageSample {
        ImageSample(path: ImageDecoderTests.image(name), label: label)
    }

    func testBadImagesAreSkippedAndListed() throws {
        let samples = [
            sample("rgb_300x200.jpg", 0), sample("bad/truncated.jpg", 1), sample("gray_123x77.jpg", 1),
            sample("bad/empty.jpg", 0), sample("rgba_130x90.png", 0), sample("missing.jpg", 1),
        ]
        let batch = ImageBatch.load(samples)
        XCTAssertEqual(batch.images.shape, [3, 3, 224, 224])
        XCTAssertEqual(batch.samples, [samples[0], samples[2], samples[4]])
        XCTAssertEqual(batch.labels, [0, 1, 0])
        XCTAssertEqual(batch.skipped.map(\.path), [samples[1].path, samples[3].path, samples[5].path])
        for skipped in batch.skipped {
            XCTAssertThrowsError(try ImageDecoder.decode(at: skipped.path)) { XCTAssertEqual($0 as? GraftError, skipped.error) }
        }
        let size = 3 * 224 * 224, floats = batch.images.floats
        for (row, kept) in batch.samples.enumerated() {
            let alone = ImageTransform()(try ImageDecoder.decode(at: kept.path)).floats
            XCTAssertEqual(Array(floats[(row * size)..<((row + 1) * size)]), alone, kept.path)
        }
    }

    func testAugmentedBatchesRepeatWithTheirSeed() {
        let samples = ImageDecoderTests.jpegs.map { sample("\($0).jpg", 0) }
        let a = ImageBatch.load(samples, augmentation: Augmentation(), seed: 9)
        let b = ImageBatch.load(samples, augmentation: Augmentation(), seed: 9)
        let c = ImageBatch.load(samples, augmentation: Augmentation(), seed: 10)
        XCTAssertEqual(a.images.shape, [samples.count, 3, 224, 224])
        XCTAssertEqual(a.images, b.images)
        XCTAssertNotEqual(a.images, c.images)
        XCTAssertNotEqual(a.images, ImageBatch.load(samples).images)
    }

    func testNothingDecodableGivesAnEmptyBatch() {
        let batch = ImageBatch.load([sample("bad/text.jpg", 0)])
        XCTAssertEqual(batch.images.shape, [0, 3, 224, 224])
        XCTAssertEqual(batch.skipped.count, 1)
    }
}
