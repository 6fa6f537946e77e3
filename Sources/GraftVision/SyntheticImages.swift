import Foundation
import GraftCore

/// A small two-class image set made on the spot, for the offline demo and the tests: "cat"
/// pictures hold a warm, striped shape, "dog" pictures a cool, spotted one, each on a grey
/// gradient, at random sizes, positions and noise, saved as JPEG (four in five) and PNG files.
public enum SyntheticImages {
    /// The classes written, in label order.
    public static let classNames = ["cat", "dog"]

    /// Where the files go.
    public enum Layout: Sendable {
        /// Kaggle Dogs vs. Cats names in a train folder: `DIR/train/cat.0.jpg`, `DIR/train/dog.3.png`.
        case kaggle
        /// One folder per class: `DIR/cat/0.jpg`, `DIR/dog/3.png`.
        case classFolders
    }

    /// Writes `perClass` images of each class under `dir` (created if needed).
    ///
    /// - Returns: the paths written, cats first.
    /// - Throws: `GraftError` when a folder or file cannot be written.
    @discardableResult
    public static func write(to dir: String, perClass: Int, seed: UInt64 = 0, layout: Layout = .kaggle) throws -> [String] {
        precondition(perClass > 0, "perClass must be positive")
        let paths = classNames.flatMap { name in
            (0..<perClass).map { i -> String in
                let ext = i % 5 == 4 ? "png" : "jpg"
                switch layout {
                case .kaggle: return "\(dir)/train/\(name).\(i).\(ext)"
                case .classFolders: return "\(dir)/\(name)/\(i).\(ext)"
                }
            }
        }
        for folder in Set(paths.map { ($0 as NSString).deletingLastPathComponent }) {
            do {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            } catch {
                throw GraftError(.io, "cannot create the folder", file: folder)
            }
        }
        var failures = [GraftError?](repeating: nil, count: paths.count)
        failures.withUnsafeMutableBufferPointer { failed in
            let errors = failed.baseAddress!
            Parallel.forEach(paths.count) { i in
                var generator = SeededGenerator(seed: seed, stream: i)
                let image = picture(label: i / perClass, using: &generator)
                do {
                    let bytes = paths[i].hasSuffix(".png") ? try ImageEncoder.png(image) : try ImageEncoder.jpeg(image)
                    try AtomicFile.write(Data(bytes), to: paths[i])
                } catch let error as GraftError {
                    errors[i] = error
                } catch {
                    errors[i] = GraftError(.io, "\(error)", file: paths[i])
                }
            }
        }
        if let error = failures.lazy.compactMap({ $0 }).first { throw error }
        return paths
    }

    /// One picture of class `label` (0 cat, 1 dog).
    static func picture<G: RandomNumberGenerator>(label: Int, using g: inout G) -> RGBImage {
        let width = 120 + g.integer(below: 201), height = 120 + g.integer(below: 201)
        // The shape: an ellipse covering much of the picture.
        let cx = Double(width) * g.uniform(in: 0.35...0.65), cy = Double(height) * g.uniform(in: 0.35...0.65)
        let rx = Double(width) * g.uniform(in: 0.25...0.45), ry = Double(height) * g.uniform(in: 0.25...0.45)
        let base = label == 0
            ? SIMD3(g.uniform(in: 200...250), g.uniform(in: 110...160), g.uniform(in: 30...70))   // orange
            : SIMD3(g.uniform(in: 40...90), g.uniform(in: 90...140), g.uniform(in: 180...230))    // blue
        let period = g.uniform(in: 8...18), angle = g.uniform(in: 0...Double.pi)
        let spots = (0..<12).map { _ in
            (x: Double(width) * g.uniform(in: 0...1), y: Double(height) * g.uniform(in: 0...1), r: g.uniform(in: 4...14))
        }
        let grey = g.uniform(in: 80...180), slope = g.uniform(in: -0.3...0.3)
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                let fx = Double(x), fy = Double(y)
                var rgb = SIMD3(repeating: grey + slope * (fx - fy))
                let dx = (fx - cx) / rx, dy = (fy - cy) / ry
                if dx * dx + dy * dy < 1 {
                    let dark: Bool
                    if label == 0 {
                        dark = sin(2 * Double.pi * (fx * cos(angle) + fy * sin(angle)) / period) > 0.3  // stripes
                    } else {
                        dark = spots.contains { (fx - $0.x) * (fx - $0.x) + (fy - $0.y) * (fy - $0.y) < $0.r * $0.r }
                    }
                    rgb = base * (dark ? 0.5 : 1)
                }
                for c in 0..<3 {
                    let value = (rgb[c] + g.uniform(in: -12...12)).rounded()
                    pixels[(y * width + x) * 3 + c] = UInt8(max(0, min(255, value)))
                }
            }
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }
}
