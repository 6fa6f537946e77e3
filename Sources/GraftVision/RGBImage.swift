/// An 8-bit RGB picture: `height` rows of `width` pixels, each pixel three bytes R, G, B.
public struct RGBImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// `width * height * 3` bytes, row by row, channels interleaved.
    public let pixels: [UInt8]

    /// An image over existing pixels; `pixels.count` must be `width * height * 3`.
    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(width > 0 && height > 0, "an image of \(width)x\(height) pixels is empty")
        precondition(pixels.count == width * height * 3, "\(pixels.count) bytes for \(width)x\(height) RGB pixels")
        self.width = width
        self.height = height
        self.pixels = pixels
    }
}
