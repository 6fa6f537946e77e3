import CTurboJPEG
import GraftCore

/// JPEG decoding with libjpeg-turbo's TurboJPEG API, in PIL's colour conventions.
enum JPEGDecoder {
    static func decode(_ data: [UInt8]) throws -> RGBImage {
        guard let handle = tjInitDecompress() else {
            throw GraftError(.internal, "cannot start the JPEG decoder: \(String(cString: tjGetErrorStr2(nil)))")
        }
        defer { tjDestroy(handle) }
        func reason() -> String { String(cString: tjGetErrorStr2(handle)) }

        var width: Int32 = 0, height: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
        let headerStatus = data.withUnsafeBufferPointer {
            tjDecompressHeader3(handle, $0.baseAddress, UInt(data.count), &width, &height, &subsampling, &colorspace)
        }
        // A warning (stray bytes between markers) still leaves the header read; the decoding
        // below judges what follows.
        guard headerStatus == 0 || (tjGetErrorCode(handle) == Int32(TJERR_WARNING.rawValue) && width > 0 && height > 0) else {
            throw GraftError(.badInput, "bad JPEG header: \(reason())")
        }
        try ImageDecoder.checkDeclaredSize(width: Int(width), height: Int(height), format: "JPEG")

        let cmyk = colorspace == Int32(TJCS_CMYK.rawValue) || colorspace == Int32(TJCS_YCCK.rawValue)
        let channels = cmyk ? 4 : 3
        var decoded = [UInt8](repeating: 0, count: Int(width) * Int(height) * channels)
        let format = cmyk ? TJPF_CMYK : TJPF_RGB
        func decompress(_ flags: Int32) -> Int32 {
            data.withUnsafeBufferPointer { jpeg in
                decoded.withUnsafeMutableBufferPointer { out in
                    tjDecompress2(handle, jpeg.baseAddress, UInt(data.count), out.baseAddress, width, 0, height,
                                  Int32(format.rawValue), flags)
                }
            }
        }
        // The accurate integer IDCT and fancy upsampling are TurboJPEG's defaults, and libjpeg's,
        // which PIL uses. Progressive files with absurd scan counts are refused (a CPU bomb).
        if decompress(TJFLAG_LIMITSCANS) != 0 {
            let message = reason()
            guard tjGetErrorCode(handle) == Int32(TJERR_WARNING.rawValue) else {
                throw GraftError(.badInput, "corrupt JPEG data: \(message)")
            }
            // Warnings came first; the error code cannot tell whether an error followed them, but
            // the message can: libjpeg reports the first warning, or the error that stopped it.
            _ = decompress(TJFLAG_LIMITSCANS | TJFLAG_STOPONWARNING)
            let firstWarning = reason()
            if firstWarning.contains("Premature end") {
                throw GraftError(.badInput, "the JPEG file is truncated (\(firstWarning))")
            }
            guard firstWarning == message else { throw GraftError(.badInput, "corrupt JPEG data: \(message)") }
            // Warnings alone leave a whole image, and PIL accepts it: stray bytes before a marker
            // are common in real photo collections.
            _ = decompress(TJFLAG_LIMITSCANS)
        }
        let pixels = cmyk ? rgb(fromAdobeCMYK: decoded) : decoded
        return RGBImage(width: Int(width), height: Int(height), pixels: pixels)
    }

    /// PIL's CMYK JPEG to RGB: it reads the samples as Adobe's inverted CMYK
    /// (`c' = 255 - c`, always), then `convert("RGB")` takes `r = (255 - k') - round(c' (255 - k') / 255)`
    /// with its rounding division by 255.
    static func rgb(fromAdobeCMYK cmyk: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: cmyk.count / 4 * 3)
        for p in 0..<(cmyk.count / 4) {
            let nk = Int(cmyk[4 * p + 3])  // 255 - k', with k' the inverted sample
            for c in 0..<3 {
                let product = (255 - Int(cmyk[4 * p + c])) * nk + 128
                out[3 * p + c] = UInt8(clamping: nk - (((product >> 8) + product) >> 8))
            }
        }
        return out
    }
}
