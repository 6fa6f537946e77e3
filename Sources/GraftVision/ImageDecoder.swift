import Foundation
import GraftCore

/// Decodes JPEG and PNG files to 8-bit RGB the way torchvision's default loader does
/// (`PIL.Image.open(path).convert("RGB")`): grayscale is replicated, palettes are expanded, alpha
/// is dropped (not composited), CMYK is converted with PIL's formula, 16-bit samples keep their
/// high byte, EXIF orientation is ignored. One deliberate difference: PIL turns 16-bit grayscale
/// PNGs nearly white (it clips their values to 255); here they keep their high byte too.
///
/// The format is found from the file's first bytes, never from its name. Files that cannot be an
/// image, are cut short, or declare more than ``maxSide`` pixels on a side or ``maxPixels`` in all
/// (a decompression bomb) are refused before any pixel is decoded.
public enum ImageDecoder {
    /// The longest side accepted, in pixels.
    public static let maxSide = 16_384
    /// The most pixels accepted in one image (PIL warns from 89 million, refuses from 179 million).
    public static let maxPixels = 100_000_000

    /// Reads and decodes one image file.
    ///
    /// - Throws: `GraftError` naming `path`, in one line: `.io` when the file cannot be read,
    ///   `.badInput` when it is empty, neither JPEG nor PNG, truncated, corrupt, empty (0 pixels)
    ///   or too large.
    public static func decode(at path: String) throws -> RGBImage {
        let data = try readFile(path)
        do {
            return try decode(data)
        } catch let error as GraftError {
            throw error.inFile(path)
        }
    }

    /// Decodes an encoded JPEG or PNG held in memory.
    static func decode(_ data: [UInt8]) throws -> RGBImage {
        guard !data.isEmpty else { throw GraftError(.badInput, "the file is empty (0 bytes), not an image") }
        switch ImageFormat(sniffing: data) {
        case .jpeg: return try JPEGDecoder.decode(data)
        case .png: return try PNGDecoder.decode(data)
        case nil:
            let start = data.prefix(8).map { String(format: "%02x", $0) }.joined(separator: " ")
            throw GraftError(.badInput, "not a JPEG or PNG image (the file starts with \(start))")
        }
    }

    /// Refuses a declared size before decoding: nothing empty, nothing a bomb.
    static func checkDeclaredSize(width: Int, height: Int, format: String) throws {
        guard width > 0, height > 0 else {
            throw GraftError(.badInput, "the \(format) header declares an empty image (\(width)x\(height) pixels)")
        }
        guard width <= maxSide, height <= maxSide, width * height <= maxPixels else {
            throw GraftError(.badInput, "the \(format) header declares \(width)x\(height) pixels, more than accepted (\(maxSide) on a side, \(maxPixels / 1_000_000) megapixels in all): a decompression bomb?")
        }
    }

    private static func readFile(_ path: String) throws -> [UInt8] {
        // Without blocking: opening a FIFO for reading would wait for a writer forever.
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw GraftError(.io, "cannot read: \(String(cString: strerror(errno)))", file: path) }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw GraftError(.io, "cannot read: \(String(cString: strerror(errno)))", file: path) }
        guard status.st_mode & S_IFMT == S_IFREG else { throw GraftError(.io, "cannot read: not a regular file", file: path) }
        var bytes = [UInt8](repeating: 0, count: Int(status.st_size))
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                if n == 0 { break }  // the file shrank while we read it
                throw GraftError(.io, "cannot read: \(String(cString: strerror(errno)))", file: path)
            }
            done += n
        }
        return Array(bytes.prefix(done))
    }
}

/// The encodings GraftVision reads, recognized by their signatures.
enum ImageFormat {
    case jpeg, png

    init?(sniffing data: [UInt8]) {
        if data.starts(with: [0xFF, 0xD8, 0xFF]) {
            self = .jpeg
        } else if data.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) {
            self = .png
        } else {
            return nil
        }
    }
}
