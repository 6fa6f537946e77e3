import CPNG
import CTurboJPEG
import GraftCore

/// JPEG (TurboJPEG) and PNG (libpng's simplified API) encoding, for generated images.
enum ImageEncoder {
    /// A baseline 4:2:0 JPEG at `quality` (1–100).
    static func jpeg(_ image: RGBImage, quality: Int = 90) throws -> [UInt8] {
        guard let handle = tjInitCompress() else { throw GraftError(.internal, "cannot start the JPEG encoder") }
        defer { tjDestroy(handle) }
        var buffer: UnsafeMutablePointer<UInt8>? = nil
        var size: UInt = 0
        let status = image.pixels.withUnsafeBufferPointer {
            tjCompress2(handle, $0.baseAddress, Int32(image.width), 0, Int32(image.height), Int32(TJPF_RGB.rawValue),
                        &buffer, &size, Int32(TJSAMP_420.rawValue), Int32(quality), 0)
        }
        defer { tjFree(buffer) }
        guard status == 0, let buffer else {
            throw GraftError(.internal, "JPEG encoding failed: \(String(cString: tjGetErrorStr2(handle)))")
        }
        return Array(UnsafeBufferPointer(start: buffer, count: Int(size)))
    }

    /// An 8-bit RGB PNG.
    static func png(_ image: RGBImage) throws -> [UInt8] {
        var png = png_image()
        png.version = UInt32(PNG_IMAGE_VERSION)
        png.width = UInt32(image.width)
        png.height = UInt32(image.height)
        png.format = graft_png_format_rgb()
        var size = 0
        var out: [UInt8] = []
        let ok = image.pixels.withUnsafeBufferPointer { pixels -> Bool in
            guard png_image_write_to_memory(&png, nil, &size, 0, pixels.baseAddress, 0, nil) != 0 else { return false }
            out = [UInt8](repeating: 0, count: size)
            return out.withUnsafeMutableBytes { png_image_write_to_memory(&png, $0.baseAddress, &size, 0, pixels.baseAddress, 0, nil) } != 0
        }
        guard ok else {
            let message = withUnsafeBytes(of: png.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            throw GraftError(.internal, "PNG encoding failed: \(message)")
        }
        return Array(out.prefix(size))
    }
}
