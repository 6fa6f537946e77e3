import Foundation
import GraftCore
import GraftTestSupport
@testable import GraftTrain
import XCTest

/// The head trained here against the same head trained by PyTorch autograd
/// (`tools/make_train_references.py`): same initial weights, features and batches, dropout off,
/// same optimizer; every step's loss within 1e-6 (measured worst 1.2e-7), and the weights after 50 steps.
final class ParityTests: XCTestCase {
    struct Manifest: Decodable {
        var features: Int
        var hidden: [Int]
        var dropout: [Float]
        var classes: Int
        var batch_size: Int
        var steps: Int
        var runs: [Run]
    }

    struct Run: Decodable {
        var name: String
        var optimizer: String
        var lr: Double
        var weight_decay: Double
        var betas: [Double]?
        var eps: Double?
        var momentum: Double?
        var losses: [Double]
    }

    static func manifest() throws -> Manifest {
        try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("train/parity.json"))))
    }

    /// The reference head on a features-only trunk, with PyTorch's initial weights.
    static func head(_ m: Manifest) throws -> HeadNetwork {
        let trunk = linearModel(features: m.features, classes: m.classes)
        var graph = try ClassifierHead(classNames: (0..<m.classes).map { "class\($0)" }, hidden: m.hidden, dropout: m.dropout).graft(onto: trunk)
        for name in graph.constants.keys where name.hasPrefix("fc.") {
            graph.constants[name] = try NPY.read(Fixtures.path("train/initial/\(name).npy"))
        }
        return try HeadNetwork(graph: graph)
    }

    func testInitialOutputMatchesPyTorch() throws {
        let m = try Self.manifest()
        let head = try Self.head(m)
        let x = try Matrix(try NPY.read(Fixtures.path("train/features.npy")))
        assertClose(head.logProbabilities(x).tensor, try NPY.read(Fixtures.path("train/initial_output.npy")), atol: 1e-5, rtol: 1e-5)
    }

    func testEveryStepLossMatchesPyTorchAutograd() throws {
        let m = try Self.manifest()
        let x = try Matrix(try NPY.read(Fixtures.path("train/features.npy")))
        let labels = try NPY.read(Fixtures.path("train/labels.npy")).int64s.map(Int.init)
        let batches = try NPY.read(Fixtures.path("train/batches.npy")).int64s.map(Int.init)
        XCTAssertEqual(m.runs.map(\.name), ["adam", "adam_weight_decay", "sgd_momentum", "sgd_momentum_weight_decay"])
        for run in m.runs {
            var head = try Self.head(m)
            let optimizer: any Optimizer
            if run.optimizer == "adam" {
                optimizer = Adam(learningRate: Float(run.lr), betas: (Float(run.betas![0]), Float(run.betas![1])), eps: Float(run.eps!),
                                 weightDecay: Float(run.weight_decay))
            } else {
                optimizer = SGD(learningRate: Float(run.lr), momentum: Float(run.momentum!), weightDecay: Float(run.weight_decay))
            }
            var worst = 0.0
            for step in 0..<m.steps {
                let rows = Array(batches[(step * m.batch_size)..<((step + 1) * m.batch_size)])
                var noDropout: SeededGenerator?
                let result = head.lossAndGradients(x.gatheringRows(rows), labels: rows.map { labels[$0] }, random: &noDropout)
                worst = max(worst, abs(Double(result.loss) - run.losses[step]))
                XCTAssertEqual(Double(result.loss), run.losses[step], accuracy: 1e-6, "\(run.name) step \(step)")
                optimizer.update(&head.parameters, gradients: result.gradients)
            }
            print("\(run.name): \(m.steps) steps, loss \(run.losses[0]) -> \(run.losses.last!), worst |Δloss| vs PyTorch \(worst)")
            for p in head.parameters {
                let reference = try NPY.read(Fixtures.path("train/final/\(run.name)/\(p.name).npy"))
                assertClose(Tensor(shape: p.shape, floats: p.values), reference, atol: 1e-4, rtol: 1e-3, "\(run.name) \(p.name) after \(m.steps) steps")
            }
        }
    }
}
