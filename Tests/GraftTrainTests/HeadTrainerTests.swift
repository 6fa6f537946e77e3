import Foundation
import GraftCore
import GraftONNX
import GraftRuntime
import GraftTestSupport
@testable import GraftTrain
import XCTest

/// The training loop on feature tensors: convergence, early stopping, checkpoints, resuming,
/// interruption, history files and refusals.
final class HeadTrainerTests: XCTestCase {
    static let width = 32

    /// A model that is only a classifier over `width` features: the trunk is the identity.
    static let featureModel = linearModel(features: width, classes: 2)

    /// Two Gaussian clusters, unit variance, means ±0.5 in every feature (5.7σ apart).
    static func clusters(_ count: Int, seed: UInt64, flipLabels: Bool = false) -> FeatureSet {
        var g = SeededGenerator(seed: seed)
        var values: [Float] = [], labels: [Int] = []
        for i in 0..<count {
            let label = i % 2
            for _ in 0..<width {
                // Box–Muller.
                let u = max(Float.random(in: 0..<1, using: &g), 1e-7), v = Float.random(in: 0..<1, using: &g)
                values.append((label == 0 ? 0.5 : -0.5) + (-2 * Foundation.log(u)).squareRoot() * Foundation.cos(2 * .pi * v))
            }
            labels.append(flipLabels ? 1 - label : label)
        }
        return FeatureSet(features: Matrix(rows: count, columns: width, values: values), labels: labels)
    }

    static func configuration() -> TrainingConfiguration {
        var c = TrainingConfiguration()
        c.hidden = [16, 8]
        c.dropout = [0.2, 0.1]
        c.epochs = 8
        c.batchSize = 16
        c.optimizer = .adam(learningRate: 3e-3)
        c.patience = nil
        c.seed = 5
        return c
    }

    static func grafted(seed: UInt64 = 5) throws -> Graph {
        try ClassifierHead(classNames: ["left", "right"], hidden: [16, 8], dropout: [0.2, 0.1]).graft(onto: featureModel, seed: seed)
    }

    func testTheHeadLearnsSeparableClusters() throws {
        let trainer = try HeadTrainer(graph: try Self.grafted(), configuration: Self.configuration())
        let test = Self.clusters(400, seed: 3)
        let before = trainer.evaluate(test)
        let result = try trainer.train(Self.clusters(300, seed: 1), validation: Self.clusters(100, seed: 2))
        let head = try HeadNetwork(graph: result.graph)
        let predictions = head.logProbabilities(test.features).argmaxRows()
        let accuracy = Double(zip(predictions, test.labels).filter { $0 == $1 }.count) / Double(test.count)
        print("clusters: test accuracy \(before.accuracy) before, \(accuracy) after \(result.history.epochs.count) epochs; "
              + "validation loss \(result.history.epochs.map { String(format: "%.3f", $0.validationLoss!) })")
        XCTAssertGreaterThanOrEqual(accuracy, 0.95)
        XCTAssertEqual(result.stopReason, .completed)
        XCTAssertEqual(result.history.epochs.count, 8)
        let losses = result.history.epochs.map(\.validationLoss!)
        XCTAssertEqual(result.bestEpoch, losses.indices.min { losses[$0] < losses[$1] }! + 1)
        XCTAssertLessThan(losses.last!, losses.first!)
    }

    /// Validation labels opposite to training: validation loss rises from the first epoch on.
    func testEarlyStoppingKeepsTheBestEpoch() throws {
        var c = Self.configuration()
        c.patience = 2
        let trainer = try HeadTrainer(graph: try Self.grafted(), configuration: c)
        var checkpoints: [Graph] = []
        var events: [TrainingEvent] = []
        let result = try trainer.train(Self.clusters(200, seed: 1), validation: Self.clusters(50, seed: 2, flipLabels: true),
                                       checkpoint: { checkpoints.append($0) }, events: { events.append($0) })
        XCTAssertEqual(result.stopReason, .earlyStopped)
        XCTAssertEqual(result.history.epochs.count, 3)
        XCTAssertEqual(result.bestEpoch, 1)
        XCTAssertEqual(checkpoints.count, 1)
        XCTAssertEqual(checkpoints.first, result.graph)
        XCTAssertEqual(events.compactMap { if case .epochEnded(let r, let best) = $0 { return "\(r.epoch):\(best)" } else { return nil } },
                       ["1:true", "2:false", "3:false"])
        XCTAssertEqual(events.last, .stoppedEarly(epoch: 3, bestEpoch: 1))
        XCTAssertEqual(events.last?.message, "stopped early after epoch 3: validation loss has not improved since epoch 1")
        let first = result.history.epochs[0]
        let head = try HeadNetwork(graph: result.graph)
        let measured = try HeadTrainer(graph: result.graph, configuration: c).evaluate(Self.clusters(50, seed: 2, flipLabels: true))
        XCTAssertEqual(measured.loss, first.validationLoss!, accuracy: 1e-9, "the result holds epoch 1's parameters")
        XCTAssertEqual(head.parameterCount, 32 * 16 + 16 + 16 * 8 + 8 + 8 * 2 + 2)
    }

    /// Ctrl-C in epoch 3, then `--resume`: the same epochs, losses and weights as one run.
    func testAnInterruptedRunResumesExactly() throws {
        let dir = try TemporaryDirectory()
        let train = Self.clusters(200, seed: 1), validation = Self.clusters(60, seed: 2)
        var c = Self.configuration()
        c.epochs = 5
        c.patience = 3
        let straight = try HeadTrainer(graph: try Self.grafted(), configuration: c).train(train, validation: validation)

        c.statePath = dir.file("run.state")
        c.historyPath = dir.file("history.csv")
        let stop = StopFlag()
        let interrupted = try HeadTrainer(graph: try Self.grafted(), configuration: c).train(train, validation: validation, stop: stop, events: { event in
            if case .progress(let p) = event, p.phase == .training(epoch: 3, epochs: 5) { stop.stop() }
        })
        XCTAssertEqual(interrupted.stopReason, .interrupted)
        XCTAssertEqual(interrupted.history.epochs.count, 2)
        XCTAssertEqual(try String(contentsOfFile: dir.file("history.csv"), encoding: .utf8).split(separator: "\n").count, 3)

        c.resume = true
        var events: [TrainingEvent] = []
        let resumed = try HeadTrainer(graph: try Self.grafted(), configuration: c).train(train, validation: validation, events: { events.append($0) })
        XCTAssertEqual(events.first, .resumed(completedEpochs: 2))
        XCTAssertEqual(resumed.stopReason, straight.stopReason)
        XCTAssertEqual(resumed.bestEpoch, straight.bestEpoch)
        func numbers(_ h: TrainingHistory) -> [[Double?]] {
            h.epochs.map { [Double($0.epoch), $0.trainLoss, $0.trainAccuracy, $0.validationLoss, $0.validationAccuracy] }
        }
        XCTAssertEqual(numbers(resumed.history), numbers(straight.history))
        XCTAssertEqual(resumed.graph.constants, straight.graph.constants)
        let csv = try String(contentsOfFile: dir.file("history.csv"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(csv.first, "epoch,train_loss,train_accuracy,val_loss,val_accuracy,seconds")
        XCTAssertEqual(csv.count, 6)
    }

    func testResumingWithOtherSettingsOrAMissingStateIsRefused() throws {
        let dir = try TemporaryDirectory()
        let train = Self.clusters(64, seed: 1)
        var c = Self.configuration()
        c.epochs = 1
        c.statePath = dir.file("run.state")
        _ = try HeadTrainer(graph: try Self.grafted(), configuration: c).train(train, validation: nil)
        c.resume = true
        c.epochs = 2
        c.batchSize = 8
        XCTAssertThrowsError(try HeadTrainer(graph: try Self.grafted(), configuration: c).train(train, validation: nil)) { error in
            XCTAssertEqual((error as? GraftError)?.description,
                           "\(dir.file("run.state")): the saved run has batchSize 16; this run has 8: resume with the same settings and data")
        }
        c.batchSize = 16
        XCTAssertThrowsError(try HeadTrainer(graph: try Self.grafted(), configuration: c).train(Self.clusters(64, seed: 9), validation: nil)) { error in
            XCTAssertTrue((error as? GraftError)?.message.hasPrefix("the saved run has data ") == true, "\(error)")
        }
        c.optimizer = .sgd(learningRate: 0.1)
        XCTAssertThrowsError(try HeadTrainer(graph: try Self.grafted(), configuration: c).train(train, validation: nil))
        c.optimizer = Self.configuration().optimizer
        let saved = try Data(contentsOf: URL(fileURLWithPath: dir.file("run.state")))
        try saved.dropLast(100).write(to: URL(fileURLWithPath: dir.file("run.state")))
        XCTAssertThrowsError(try HeadTrainer(graph: try Self.grafted(), configuration: c).train(train, validation: nil)) { error in
            XCTAssertEqual((error as? GraftError)?.description,
                           "\(dir.file("run.state")): not a valid Graft training state file: the checksum does not match (the file is truncated or corrupted)")
        }
        c.statePath = dir.file("absent.state")
        XCTAssertThrowsError(try HeadTrainer(graph: try Self.grafted(), configuration: c).train(train, validation: nil)) { error in
            XCTAssertEqual((error as? GraftError)?.description, "\(dir.file("absent.state")): cannot open: No such file or directory")
        }
    }

    func testCheckpointsExportAndRunLikeTheHead() throws {
        let dir = try TemporaryDirectory()
        var c = Self.configuration()
        c.epochs = 3
        c.plotPath = dir.file("history.svg")
        let validation = Self.clusters(40, seed: 2)
        let result = try HeadTrainer(graph: try Self.grafted(), configuration: c).train(Self.clusters(100, seed: 1), validation: validation, checkpoint: {
            try ONNXExporter.export($0, to: dir.file("best.onnx"))
        })
        let exported = try ONNXImporter.importModel(at: dir.file("best.onnx"))
        XCTAssertEqual(exported.classNames, ["left", "right"])
        let y = try Interpreter(graph: exported).run(["x": validation.features.tensor])["y"]!
        assertClose(y, try HeadNetwork(graph: result.graph).logProbabilities(validation.features).tensor, atol: 1e-5, rtol: 1e-5)
        let svg = try String(contentsOfFile: dir.file("history.svg"), encoding: .utf8)
        XCTAssertTrue(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""))
        XCTAssertEqual(svg.components(separatedBy: "<polyline").count - 1, 4, "train and validation, loss and accuracy")
        XCTAssertTrue(svg.hasSuffix("</svg>\n"))
    }

    func testADivergingLossStopsWithAClearError() throws {
        var c = Self.configuration()
        c.optimizer = .sgd(learningRate: 1e30, momentum: 0)
        XCTAssertThrowsError(try HeadTrainer(graph: try Self.grafted(), configuration: c).train(Self.clusters(64, seed: 1), validation: nil)) { error in
            XCTAssertTrue((error as? GraftError)?.message.hasSuffix("in epoch 1; try a lower learning rate") == true, "\(error)")
        }
    }

    func testBadSettingsAndDataAreRefused() throws {
        func message(_ change: (inout TrainingConfiguration) -> Void) -> String? {
            var c = Self.configuration()
            change(&c)
            do {
                try c.validate()
                return nil
            } catch {
                return (error as? GraftError)?.description
            }
        }
        XCTAssertEqual(message { $0.epochs = 0 }, "the number of epochs must be at least 1; got 0")
        XCTAssertEqual(message { $0.batchSize = 0 }, "the batch size must be at least 1; got 0")
        XCTAssertEqual(message { $0.optimizer = .adam(learningRate: 0) }, "the learning rate must be positive; got 0.0")
        XCTAssertEqual(message { $0.optimizer = .sgd(learningRate: 0.1, momentum: 1) }, "the momentum must be in [0, 1); got 1.0")
        XCTAssertEqual(message { $0.patience = 0 }, "the patience must be at least 1 epoch; got 0")
        XCTAssertEqual(message { $0.resume = true }, "resuming needs the training state file")
        XCTAssertEqual(message { $0.dropout = [0.5] }, "give one dropout probability per hidden layer: 2 hidden layers, 1 dropout values")

        let trainer = try HeadTrainer(graph: try Self.grafted(), configuration: Self.configuration())
        var wrongLabel = Self.clusters(8, seed: 1)
        wrongLabel.labels[3] = 2
        XCTAssertThrowsError(try trainer.train(wrongLabel, validation: nil)) { error in
            XCTAssertEqual((error as? GraftError)?.description, "a training label is 2; the head has 2 classes")
        }
        let narrow = FeatureSet(features: Matrix(zeros: 4, 3), labels: [0, 1, 0, 1])
        XCTAssertThrowsError(try trainer.train(Self.clusters(8, seed: 1), validation: narrow)) { error in
            XCTAssertEqual((error as? GraftError)?.description, "the validation features have 3 columns; the head reads 32")
        }
    }
}
