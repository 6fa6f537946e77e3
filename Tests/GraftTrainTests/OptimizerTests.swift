import GraftCore
@testable import GraftTrain
import XCTest

/// What the PyTorch parity test does not cover: saving and restoring optimizer state, refusals,
/// and the small pieces around training (random streams, progress lines, history CSV).
final class OptimizerTests: XCTestCase {
    func parameters() -> [Parameter] {
        var r = SeededGenerator(seed: 1)
        return [Parameter(name: "w", shape: [3, 4], values: (0..<12).map { _ in r.uniform(-1, 1) }),
                Parameter(name: "b", shape: [3], values: [0.1, -0.2, 0.3])]
    }

    func gradients(_ step: Int) -> [[Float]] {
        var r = SeededGenerator(seed: 100 + UInt64(step))
        return [(0..<12).map { _ in r.uniform(-1, 1) }, (0..<3).map { _ in r.uniform(-1, 1) }]
    }

    func testRestoredStateContinuesExactly() throws {
        for make in [{ Adam(learningRate: 0.01, weightDecay: 0.1) as any Optimizer }, { SGD(learningRate: 0.1, momentum: 0.9, weightDecay: 0.01) }] {
            var straight = parameters()
            let a = make()
            for s in 0..<6 { a.update(&straight, gradients: gradients(s)) }

            var resumed = parameters()
            let b = make()
            for s in 0..<3 { b.update(&resumed, gradients: gradients(s)) }
            let c = make()
            try c.restore(b.state)
            for s in 3..<6 { c.update(&resumed, gradients: gradients(s)) }
            XCTAssertEqual(resumed, straight, "\(type(of: a))")
            XCTAssertEqual(c.state, a.state)
            XCTAssertEqual(a.state.step, 6)
        }
    }

    func testPlainSGDStepsAgainstTheGradient() {
        var p = parameters()
        let before = p
        SGD(learningRate: 0.5).update(&p, gradients: gradients(0))
        for i in p.indices {
            XCTAssertEqual(p[i].values, zip(before[i].values, gradients(0)[i]).map { $0 - 0.5 * $1 })
        }
    }

    func testAStateFromAnotherOptimizerIsRefused() {
        let adam = Adam()
        var p = parameters()
        adam.update(&p, gradients: gradients(0))
        XCTAssertThrowsError(try SGD(learningRate: 0.1).restore(adam.state)) { error in
            XCTAssertEqual((error as? GraftError)?.message, "the saved optimizer state is adam's; this run uses sgd")
        }
        XCTAssertThrowsError(try Adam(learningRate: 0.01).restore(adam.state)) { error in
            XCTAssertEqual((error as? GraftError)?.message, "the saved adam state has lr 0.001; this run uses 0.01")
        }
    }

    func testDefaultsArePyTorchs() {
        let adam = Adam()
        XCTAssertEqual(adam.learningRate, 1e-3)
        XCTAssertEqual(adam.betas.0, 0.9)
        XCTAssertEqual(adam.betas.1, 0.999)
        XCTAssertEqual(adam.eps, 1e-8)
        XCTAssertEqual(adam.weightDecay, 0)
        XCTAssertEqual(OptimizerChoice.default, .adam(learningRate: 1e-3, weightDecay: 0))
        XCTAssertEqual(TrainingConfiguration().hidden, [1024, 256])
        XCTAssertEqual(TrainingConfiguration().dropout, [0.5, 0.3])
    }

    func testRandomStreamsAreSeededAndIndependent() {
        var a = SeededGenerator(seed: 7, purpose: .shuffle, epoch: 2), b = SeededGenerator(seed: 7, purpose: .shuffle, epoch: 2)
        var c = SeededGenerator(seed: 7, purpose: .shuffle, epoch: 3), d = SeededGenerator(seed: 7, purpose: .dropout, epoch: 2)
        var e = SeededGenerator(seed: 8, purpose: .shuffle, epoch: 2)
        let xs = a.permutation(50)
        XCTAssertEqual(xs, b.permutation(50))
        XCTAssertEqual(xs.sorted(), Array(0..<50))
        XCTAssertNotEqual(xs, c.permutation(50))
        XCTAssertNotEqual(xs, d.permutation(50))
        XCTAssertNotEqual(xs, e.permutation(50))
        // Every position takes every value about equally often.
        var r = SeededGenerator(seed: 1)
        var firsts = [Int](repeating: 0, count: 5)
        for _ in 0..<10_000 { firsts[r.permutation(5)[0]] += 1 }
        for count in firsts { XCTAssertEqual(Double(count) / 10_000, 0.2, accuracy: 0.02) }
    }

    func testProgressLine() {
        let p = TrainingProgress(phase: .training(epoch: 3, epochs: 10), completed: 9216, total: 18398, elapsed: 1.8)
        XCTAssertEqual(p.line(), "epoch 3/10 [############............] 9216/18398  5120 img/s  ETA 0:02")
        XCTAssertEqual(TrainingProgress(phase: .features(split: "train"), completed: 0, total: 10, elapsed: 0).line(barWidth: 4),
                       "features train [....] 0/10  0 img/s  ETA --:--")
        XCTAssertEqual(TrainingProgress.clock(3725), "1:02:05")
    }

    func testHistoryCSV() {
        let h = TrainingHistory(epochs: [
            EpochRecord(epoch: 1, trainLoss: 0.5, trainAccuracy: 0.75, validationLoss: 0.25, validationAccuracy: 0.875, seconds: 1.5),
            EpochRecord(epoch: 2, trainLoss: 0.125, trainAccuracy: 1, validationLoss: nil, validationAccuracy: nil, seconds: 2),
        ])
        XCTAssertEqual(h.csv(), """
        epoch,train_loss,train_accuracy,val_loss,val_accuracy,seconds
        1,0.500000,0.750000,0.250000,0.875000,1.500
        2,0.125000,1.000000,,,2.000

        """)
    }
}
