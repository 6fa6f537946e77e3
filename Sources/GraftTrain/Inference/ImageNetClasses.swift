import Foundation

/// The 1,000 ImageNet class names in torchvision's order, for a trunk's 1000-way classifier:
/// the resource `imagenet_classes.txt`, one name a line (tools/make_imagenet_classes.py).
public enum ImageNetClasses {
    public static let names: [String] = {
        guard let url = Bundle.module.url(forResource: "imagenet_classes", withExtension: "txt"),
              let text = try? String(contentsOf: url, encoding: .utf8) else { return [] }
        return text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
    }()
}
