import GraftCore
/// The shares of a pool of images that go to validation and test; the rest is for training.
public struct SplitProportions: Sendable, Equatable {
    /// The validation share, in [0, 1).
    public let validation: Double
    /// The test share, in [0, 1).
    public let test: Double

    public init(validation: Double, test: Double) {
        precondition(validation >= 0 && test >= 0 && validation + test < 1,
                     "validation (\(validation)) and test (\(test)) shares must leave some images for training")
        self.validation = validation
        self.test = test
    }

    /// The reference's split of Kaggle's 25,000 Dogs vs. Cats images: 18,398 train, 2,002
    /// validation, 4,600 test (73.592 %, 8.008 %, 18.4 %).
    public static let reference = SplitProportions(validation: 2_002.0 / 25_000, test: 4_600.0 / 25_000)

    /// Splits each class on its own, so every part keeps the class balance: of a class's `n`
    /// files, `round(n · validation)` drawn by `seed` go to validation, `round(n · test)` to
    /// test, the rest to training. Each part keeps the dataset's order.
    func split(_ dataset: ImageDataset, seed: UInt64) -> (train: ImageDataset, validation: ImageDataset, test: ImageDataset) {
        var byClass = [[Int]](repeating: [], count: dataset.classNames.count)
        for (i, s) in dataset.samples.enumerated() { byClass[s.label].append(i) }
        // 0 train, 1 validation, 2 test, per sample.
        var part = [Int](repeating: 0, count: dataset.count)
        for (label, members) in byClass.enumerated() {
            var order = members
            var generator = SeededGenerator(seed: seed, stream: label)
            for i in stride(from: order.count - 1, to: 0, by: -1) {
                order.swapAt(i, generator.integer(below: i + 1))
            }
            let n = Double(order.count)
            let validationCount = Int((n * validation).rounded()), testCount = Int((n * test).rounded())
            for i in order.prefix(validationCount) { part[i] = 1 }
            for i in order.dropFirst(validationCount).prefix(testCount) { part[i] = 2 }
        }
        func subset(_ p: Int) -> ImageDataset {
            ImageDataset(classNames: dataset.classNames, samples: dataset.samples.indices.filter { part[$0] == p }.map { dataset.samples[$0] })
        }
        return (subset(0), subset(1), subset(2))
    }
}
