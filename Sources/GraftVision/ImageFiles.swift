import Foundation
import GraftCore

/// The image files a user names: files as given, folders expanded to the JPEG and PNG files
/// they hold (by extension, sorted).
public enum ImageFiles {
    /// - Throws: `GraftError` naming a path that does not exist, or saying that there is no
    ///   image at all.
    public static func expand(_ paths: [String]) throws -> [String] {
        var out: [String] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw GraftError(.io, "no such file or folder", file: path)
            }
            if isDirectory.boolValue {
                let names = try FileManager.default.contentsOfDirectory(atPath: path).sorted()
                out += names.filter(ImageDataset.isImageName)
                    .map { (path as NSString).appendingPathComponent($0) }
            } else {
                out.append(path)
            }
        }
        guard !out.isEmpty else { throw GraftError(.badInput, "no images to classify", file: paths.first) }
        return out
    }
}
