import ArgumentParser

/// The bounds on the sizes a user gives as options, checked in `validate()` so that a typo
/// (`--batch 20000000`, `--threads 100000`) is a usage error instead of an allocation or thread
/// creation failing deep in a run.
enum Limits {
    /// Threads: well above any machine's cores, well below what the system lets one process create.
    static let threads = 1024
    /// Images per run or per optimizer step: ResNet-50 at 224×224 takes about 3.3 GB of
    /// activations per 1,000 images.
    static let batch = 4096
    static let runs = 100_000
    static let epochs = 100_000
    static let topK = 100_000
    static let imagesPerClass = 100_000
    /// Hidden layers of a grafted head, and units in each.
    static let hiddenLayers = 16
    static let width = 16_384

    /// Throws `--NAME must be between LOW and HIGH`.
    static func check(_ name: String, _ value: Int, _ range: ClosedRange<Int>) throws {
        guard !range.contains(value) else { return }
        throw ValidationError("\(name) must be between \(range.lowerBound) and \(range.upperBound)")
    }
}
