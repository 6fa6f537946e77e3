import Foundation
import GraftCore
import GraftTestSupport
@testable import GraftVision
import XCTest

final class ImageDecoderTests: XCTestCase {
    /// The fixture images with PIL's decoding beside them (`tools/make_image_fixtures.py`).
    static let jpegs = ["rgb_300x200", "rgb_199x401", "rgb_1000x37", "gray_123x77", "cmyk_160x120", "one_1x1"]
    static let pngs = ["rgb_97x150", "rgba_130x90", "palette_111x64", "gray_alpha_64x48", "bilevel_40x30",
                       "rgb16_70x50", "interlaced_45x33"]

    static func image(_ name: String) -> String {
        Fixtures.path("images/\(name)")
    }

    /// PIL's `Image.open(path).convert("RGB")` pixels.
    static func pilPixels(_ stem: String) throws -> RGBImage {
        let t = try NPY.read(image("\(stem).pixels.npy"))
        return RGBImage(width: t.shape[1], height: t.shape[0], pixels: t.withUnsafeBufferPointer(as: UInt8.self) { Array($0) })
    }

    /// The largest difference between two same-sized images, in 8-bit levels.
    static func maxDifference(_ a: RGBImage, _ b: RGBImage) -> Int {
        zip(a.pixels, b.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 0
    }

    func testJPEGPixelsMatchPIL() throws {
        for stem in Self.jpegs {
            let decoded = try ImageDecoder.decode(at: Self.image("\(stem).jpg"))
            let reference = try Self.pilPixels(stem)
            XCTAssertEqual([decoded.width, decoded.height], [reference.width, reference.height], stem)
            let delta = Self.maxDifference(decoded, reference)
            print("decoder \(stem).jpg: max |Δ| = \(delta) levels vs PIL")
            // libjpeg-turbo 2.1 (here) and 3.2 (PIL's) share the IDCT and upsampling they use.
            XCTAssertLessThanOrEqual(delta, 1, stem)
        }
    }

    func testPNGPixelsEqualPIL() throws {
        for stem in Self.pngs {
            let decoded = try ImageDecoder.decode(at: Self.image("\(stem).png"))
            let reference = try Self.pilPixels(stem)
            XCTAssertEqual([decoded.width, decoded.height], [reference.width, reference.height], stem)
            print("decoder \(stem).png: max |Δ| = \(Self.maxDifference(decoded, reference)) levels vs PIL")
            XCTAssertEqual(decoded, reference, stem)
        }
    }
}

final class BadImageTests: XCTestCase {
    /// Each bad file and the one line it must give, after its path.
    static let expected: [(file: String, kind: GraftError.Kind, message: String)] = [
        ("empty.jpg", .badInput, "the file is empty (0 bytes), not an image"),
        ("truncated.jpg", .badInput, "the JPEG file is truncated (Premature end of JPEG file)"),
        ("truncated.png", .badInput, "the PNG file is truncated"),
        ("text.jpg", .badInput, "not a JPEG or PNG image (the file starts with 74 68 69 73 20 69 73 20)"),
        ("bomb.jpg", .badInput, "the JPEG header declares 60000x60000 pixels, more than accepted (16384 on a side, 100 megapixels in all): a decompression bomb?"),
        ("bomb.png", .badInput, "the PNG header declares 60000x60000 pixels, more than accepted (16384 on a side, 100 megapixels in all): a decompression bomb?"),
        ("zero_height.jpg", .badInput, "bad JPEG header: Empty JPEG image (DNL not supported)"),
        ("zero_width.png", .badInput, "the PNG header declares an empty image (0x16 pixels)"),
    ]

    func testEveryBadFileGivesItsOneLineError() {
        for (file, kind, message) in Self.expected {
            let path = ImageDecoderTests.image("bad/\(file)")
            XCTAssertThrowsError(try ImageDecoder.decode(at: path), file) { error in
                guard let error = error as? GraftError else { return XCTFail("\(file): \(error) is not a GraftError") }
                XCTAssertEqual(error.kind, kind, file)
                XCTAssertEqual(error.description, "\(path): \(message)")
                XCTAssertFalse(error.description.contains("\n"), file)
            }
        }
    }

    func testUnreadablePaths() throws {
        let missing = ImageDecoderTests.image("no-such-image.jpg")
        XCTAssertThrowsError(try ImageDecoder.decode(at: missing)) {
            XCTAssertEqual(($0 as? GraftError)?.description, "\(missing): cannot read: No such file or directory")
        }
        let folder = ImageDecoderTests.image("bad")
        XCTAssertThrowsError(try ImageDecoder.decode(at: folder)) {
            XCTAssertEqual(($0 as? GraftError)?.description, "\(folder): cannot read: not a regular file")
        }
    }

    func testFormatComesFromTheBytesNotTheName() throws {
        let named = try ImageDecoder.decode(at: ImageDecoderTests.image("png_named.jpg"))
        XCTAssertEqual(named, try ImageDecoder.decode(at: ImageDecoderTests.image("rgb_97x150.png")))
    }

    func testWarningsAloneAreAcceptedAsPILDoes() throws {
        // Stray bytes between two markers: libjpeg warns "extraneous bytes", PIL decodes the
        // picture anyway (checked by hand with Pillow 13: the same pixels), and so do we.
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: ImageDecoderTests.image("rgb_300x200.jpg"))))
        XCTAssertEqual(bytes[2...3], [0xFF, 0xE0])
        let afterAPP0 = 4 + Int(bytes[4]) << 8 + Int(bytes[5])
        bytes.insert(contentsOf: [1, 2, 3], at: afterAPP0)
        XCTAssertEqual(try ImageDecoder.decode(bytes), try ImageDecoderTests.pilPixels("rgb_300x200"))
    }

    func testEveryTruncationIsRefused() throws {
        // Not only the fixture's cut: a JPEG or PNG cut anywhere gives an error, never a crash.
        for name in ["rgb_300x200.jpg", "rgb_97x150.png", "interlaced_45x33.png", "rgb_199x401.jpg"] {
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: ImageDecoderTests.image(name))))
            for cut in stride(from: 0, to: bytes.count - 2, by: max(1, bytes.count / 97)) {
                XCTAssertThrowsError(try ImageDecoder.decode(Array(bytes.prefix(cut))), "\(name) cut at \(cut)")
            }
        }
    }
}
