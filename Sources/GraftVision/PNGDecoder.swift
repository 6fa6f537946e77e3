import CPNG
import GraftCore

/// PNG decoding with libpng, in PIL's conventions (see `graft_png_decode` in CPNG's shim).
enum PNGDecoder {
    static func decode(_ data: [UInt8]) throws -> RGBImage {
        // The size, from the IHDR chunk that must come first, is checked before libpng allocates.
        if data.count >= 24, data[12..<16].elementsEqual("IHDR".utf8) {
            func be32(_ at: Int) -> Int { data[at..<(at + 4)].reduce(0) { $0 << 8 | Int($1) } }
            try ImageDecoder.checkDeclaredSize(width: be32(16), height: be32(20), format: "PNG")
        }
        var d = graft_png_decoding()
        let ok = data.withUnsafeBufferPointer { bytes in
            d.data = bytes.baseAddress
            d.size = bytes.count
            return graft_png_decode(&d)
        }
        defer { free(d.pixels) }
        guard ok != 0 else {
            let message = withUnsafeBytes(of: d.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if message.contains("truncated") { throw GraftError(.badInput, "the PNG file is truncated") }
            throw GraftError(.badInput, "corrupt PNG data: \(message)")
        }
        let width = Int(d.width), height = Int(d.height), channels = Int(d.channels)
        let source = UnsafeBufferPointer(start: d.pixels, count: width * height * channels)
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for p in 0..<(width * height) {
            // Gray is replicated; alpha, as in PIL's convert("RGB"), is dropped.
            for c in 0..<3 {
                pixels[3 * p + c] = source[p * channels + (channels >= 3 ? c : 0)]
            }
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }
}
