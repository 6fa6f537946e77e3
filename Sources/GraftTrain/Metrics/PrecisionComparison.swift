/// How a reduced precision's outputs compare with f32's on the same images: what `graft
/// evaluate --precision bf16|int8` adds to its report.
public struct PrecisionComparison: Sendable, Equatable {
    /// The precision compared (`bf16`, `int8`).
    public var precision: String
    /// The fraction of images whose top-1 class is f32's.
    public var agreement: Double
    /// The accuracy at f32 on the same images (the report's own is the precision's).
    public var referenceAccuracy: Double
    /// The largest and the mean |output − f32 output| over every image and class (the model's
    /// raw outputs: logits, or log-probabilities for a grafted model).
    public var maxDifference: Double
    public var meanDifference: Double

    public init(precision: String, agreement: Double, referenceAccuracy: Double, maxDifference: Double, meanDifference: Double) {
        (self.precision, self.agreement, self.referenceAccuracy) = (precision, agreement, referenceAccuracy)
        (self.maxDifference, self.meanDifference) = (maxDifference, meanDifference)
    }

    /// Accumulates the comparison batch by batch.
    struct Tally {
        var agreeing = 0, images = 0, referenceCorrect = 0, values = 0
        var maxDifference = 0.0, sumDifference = 0.0

        /// One batch: the outputs at the precision and at f32 (`[n, classes]`), and the true classes.
        mutating func add(_ outputs: Matrix, reference: Matrix, truth: [Int]) {
            let (top, referenceTop) = (outputs.argmaxRows(), reference.argmaxRows())
            agreeing += zip(top, referenceTop).filter { $0 == $1 }.count
            referenceCorrect += zip(referenceTop, truth).filter { $0 == $1 }.count
            images += truth.count
            for (a, b) in zip(outputs.values, reference.values) {
                let d = Double(abs(a - b))
                maxDifference = d.isNaN ? .infinity : max(maxDifference, d)
                sumDifference += d
            }
            values += outputs.values.count
        }

        func comparison(_ precision: String) -> PrecisionComparison {
            PrecisionComparison(precision: precision, agreement: Double(agreeing) / Double(max(images, 1)),
                                referenceAccuracy: Double(referenceCorrect) / Double(max(images, 1)),
                                maxDifference: maxDifference, meanDifference: sumDifference / Double(max(values, 1)))
        }
    }
}
