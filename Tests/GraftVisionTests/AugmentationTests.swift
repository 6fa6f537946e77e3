import GraftCore
import GraftTestSupport
@testable import GraftVision
import XCTest

/// Returns the same 64 bits every time: pins the uniform draws to their ends.
private struct ConstantGenerator: RandomNumberGenerator {
    var value: UInt64
    mutating func next() -> UInt64 { value }
}

final class AugmentationTests: XCTestCase {
    let image = try! ImageDecoder.decode(at: ImageDecoderTests.image("rgb_300x200.jpg"))

    func testBoxFollowsTorchvisionsFormula() {
        let augmentation = Augmentation()
        // Draws at 0: area 0.08 · 60000 = 4800 at ratio 3/4, so w = √3600 = 60, h = √6400 = 80, at (0, 0).
        var low = ConstantGenerator(value: 0)
        XCTAssertTrue(augmentation.box(width: 300, height: 200, using: &low) == (0, 0, 60, 80))
        // Draws at 1: the whole area at ratio 4/3 is 283x212, too tall every time, so the fallback:
        // the image (ratio 1.5) is wider than 4/3, so h = 200, w = round(200 · 4/3) = 267, centred.
        var high = ConstantGenerator(value: .max)
        XCTAssertTrue(augmentation.box(width: 300, height: 200, using: &high) == (16, 0, 267, 200))
        // A picture narrower than 3/4 falls back to its full width.
        var none = ConstantGenerator(value: 0)
        XCTAssertTrue(Augmentation(attempts: 0).box(width: 37, height: 1000, using: &none) == (0, 475, 37, 49))
        XCTAssertTrue(Augmentation(attempts: 0).box(width: 200, height: 220, using: &none) == (0, 0, 200, 220))
    }

    func testRandomBoxesStayInsideAndInRange() {
        let augmentation = Augmentation()
        var generator = SeededGenerator(seed: 7)
        for _ in 0..<2000 {
            let b = augmentation.box(width: 300, height: 200, using: &generator)
            XCTAssertTrue(b.x >= 0 && b.y >= 0 && b.x + b.width <= 300 && b.y + b.height <= 200, "\(b)")
            let area = Double(b.width * b.height) / 60000, ratio = Double(b.width) / Double(b.height)
            let isFallback = b == (16, 0, 267, 200)
            // Rounding the sides to pixels moves area and ratio slightly past their ranges.
            XCTAssertTrue(isFallback || (0.07...1.01).contains(area), "area \(area) of \(b)")
            XCTAssertTrue(isFallback || (0.7...1.43).contains(ratio), "ratio \(ratio) of \(b)")
        }
    }

    func testSameSeedSameTensorAndFlipMirrors() {
        let transform = ImageTransform()
        var a = SeededGenerator(seed: 42), b = SeededGenerator(seed: 42), c = SeededGenerator(seed: 43)
        let first = transform(image, augmentation: Augmentation(), using: &a)
        XCTAssertEqual(first.shape, [3, 224, 224])
        XCTAssertEqual(first, transform(image, augmentation: Augmentation(), using: &b))
        XCTAssertNotEqual(first, transform(image, augmentation: Augmentation(), using: &c))

        var plain = SeededGenerator(seed: 5), mirrored = SeededGenerator(seed: 5)
        let kept = transform(image, augmentation: Augmentation(flipProbability: 0), using: &plain).floats
        let flipped = transform(image, augmentation: Augmentation(flipProbability: 1), using: &mirrored).floats
        for c in 0..<3 {
            for y in stride(from: 0, to: 224, by: 37) {
                for x in stride(from: 0, to: 224, by: 23) {
                    XCTAssertEqual(flipped[(c * 224 + y) * 224 + x], kept[(c * 224 + y) * 224 + 223 - x])
                }
            }
        }
    }

    /// With no crop attempts every draw takes the same (fallback) box, so each output is the
    /// unflipped image or its mirror: about half of them are mirrored.
    func testFlipHappensAboutHalfTheTime() {
        let transform = ImageTransform(resize: 37, crop: 32)
        let augmentation = Augmentation(attempts: 0)
        var never = SeededGenerator(seed: 0), always = SeededGenerator(seed: 0)
        let kept = transform(image, augmentation: Augmentation(flipProbability: 0, attempts: 0), using: &never)
        let mirrored = transform(image, augmentation: Augmentation(flipProbability: 1, attempts: 0), using: &always)
        XCTAssertNotEqual(kept, mirrored)
        var generator = SeededGenerator(seed: 1)
        var flips = 0, plain = 0
        for _ in 0..<400 {
            let out = transform(image, augmentation: augmentation, using: &generator)
            if out == mirrored { flips += 1 } else if out == kept { plain += 1 }
        }
        XCTAssertEqual(flips + plain, 400, "every output is the image or its mirror")
        XCTAssertTrue((160...240).contains(flips), "\(flips) flips in 400")
    }
}
