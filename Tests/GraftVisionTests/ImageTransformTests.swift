import GraftCore
import GraftTestSupport
@testable import GraftVision
import XCTest

final class ImageTransformTests: XCTestCase {
    static let all = ImageDecoderTests.jpegs.map { "\($0).jpg" } + ["rgb_400x300.jpg"] + ImageDecoderTests.pngs.map { "\($0).png" }

    /// torchvision's normalized output, from the 8-bit values it normalized (stored that way,
    /// losslessly; the fixture tool checks it), with torchvision's constants written out here.
    static func torchvisionTensor(_ npy: String) throws -> Tensor {
        let bytes = try NPY.read(ImageDecoderTests.image(npy))
        let (h, w) = (bytes.shape[0], bytes.shape[1])
        let v = bytes.withUnsafeBufferPointer(as: UInt8.self) { Array($0) }
        let mean: [Float] = [0.485, 0.456, 0.406], std: [Float] = [0.229, 0.224, 0.225]
        var out = [Float](repeating: 0, count: 3 * h * w)
        for c in 0..<3 {
            for i in 0..<(h * w) { out[c * h * w + i] = (Float(v[i * 3 + c]) / 255 - mean[c]) / std[c] }
        }
        return Tensor(shape: [3, h, w], floats: out)
    }

    func testEvaluationTransformMatchesTorchvision() throws {
        let transform = ImageTransform()
        var worst: Float = 0
        for file in Self.all {
            let stem = String(file.prefix { $0 != "." })
            let image = try ImageDecoder.decode(at: ImageDecoderTests.image(file))
            let tensor = transform(image)
            XCTAssertEqual(tensor.shape, [3, 224, 224])
            let c = Closeness(tensor, try Self.torchvisionTensor("\(stem).eval.npy"), atol: 0.02, rtol: 0)
            print("transform \(file) (\(image.width)x\(image.height)): max |Δ| = \(c.maxAbsDiff) vs torchvision")
            XCTAssertTrue(c.ok, "\(file): \(c)")
            worst = max(worst, c.maxAbsDiff)
        }
        print("transform: worst max |Δ| = \(worst) over \(Self.all.count) images (aim ≤ 0.02)")
    }

    /// The resized and cropped bytes themselves equal PIL's: any drift in the filter shows here
    /// as a whole level, well before it would pass 0.02 on the normalized tensor.
    func testResizedBytesEqualPIL() throws {
        let transform = ImageTransform()
        for file in Self.all {
            let stem = String(file.prefix { $0 != "." })
            let image = try ImageDecoder.decode(at: ImageDecoderTests.image(file))
            let (w, h) = transform.resizedSize(width: image.width, height: image.height)
            let top = Int((Double(h - 224) / 2).rounded(.toNearestOrEven)), left = Int((Double(w - 224) / 2).rounded(.toNearestOrEven))
            let ours = Resampler.resize(image, region: (0, 0, image.width, image.height), to: w, h, window: (left, top, 224, 224))
            let reference = try NPY.read(ImageDecoderTests.image("\(stem).eval.npy")).withUnsafeBufferPointer(as: UInt8.self) { Array($0) }
            let delta = zip(ours, reference).map { abs(Int($0) - Int($1)) }.max()!
            XCTAssertEqual(delta, 0, "\(file): resized bytes differ from PIL's by up to \(delta) levels")
        }
    }

    func testSmallTransformAgainstTorchvisionFloats() throws {
        // Resize(64) + CenterCrop(56): torchvision's float32 output as stored, nothing rebuilt.
        let image = try ImageDecoder.decode(at: ImageDecoderTests.image("rgb_199x401.jpg"))
        let tensor = ImageTransform(resize: 64, crop: 56)(image)
        let reference = try NPY.read(ImageDecoderTests.image("rgb_199x401.small_eval.npy"))
        let c = Closeness(tensor, reference, atol: 1e-6, rtol: 0)
        print("transform rgb_199x401.jpg Resize(64)+CenterCrop(56): max |Δ| = \(c.maxAbsDiff) vs torchvision float32")
        XCTAssertTrue(c.ok, c.description)
    }

    func testResizedCropMatchesTorchvision() throws {
        // The resize RandomResizedCrop does after drawing its box: F.resized_crop to 64x64.
        let image = try ImageDecoder.decode(at: ImageDecoderTests.image("rgb_300x200.jpg"))
        for (label, box) in [("down", (x: 33, y: 17, width: 101, height: 150)), ("up", (x: 7, y: 5, width: 30, height: 20))] {
            let ours = Resampler.resize(image, region: box, to: 64, 64, window: (0, 0, 64, 64))
            let reference = try NPY.read(ImageDecoderTests.image("rgb_300x200.resized_crop_\(label).npy"))
            let delta = zip(ours, reference.withUnsafeBufferPointer(as: UInt8.self) { Array($0) }).map { abs(Int($0) - Int($1)) }.max()!
            XCTAssertEqual(delta, 0, "\(label): resized crop differs from torchvision's by up to \(delta) levels")
        }
    }

    func testResizedSizeIsTorchvisions() {
        let t = ImageTransform()
        XCTAssertTrue(t.resizedSize(width: 300, height: 200) == (384, 256))
        XCTAssertTrue(t.resizedSize(width: 199, height: 401) == (256, 515))  // int(515.86)
        XCTAssertTrue(t.resizedSize(width: 1000, height: 37) == (6918, 256))
        XCTAssertTrue(t.resizedSize(width: 1, height: 1) == (256, 256))
    }

    func testBatchStacksImages() throws {
        let transform = ImageTransform()
        let images = try ["rgb_300x200.jpg", "rgb_97x150.png"].map { try ImageDecoder.decode(at: ImageDecoderTests.image($0)) }
        let batch = transform(images)
        XCTAssertEqual(batch.shape, [2, 3, 224, 224])
        let size = 3 * 224 * 224
        XCTAssertEqual(Array(batch.floats[size...]), transform(images[1]).floats)
        XCTAssertEqual(Array(batch.floats[..<size]), transform(images[0]).floats)
    }
}
