@testable import GraftTrain
import XCTest

/// The training history's plot: round ticks, the best epoch labelled, the legend off the curves.
final class HistoryPlotTests: XCTestCase {
    func testTicksAreRound() {
        XCTAssertEqual(SVGDocument.ticks(0...0.7431), [0, 0.2, 0.4, 0.6, 0.8])
        XCTAssertEqual(SVGDocument.ticks(0.4...1), [0.4, 0.6, 0.8, 1.0])
        XCTAssertEqual(SVGDocument.ticks(0...2.31), [0, 1, 2, 3])
        XCTAssertEqual(SVGDocument.ticks(0.9...1), [0.9, 0.925, 0.95, 0.975, 1.0])
        XCTAssertEqual(SVGDocument.tickLabel(0.925, step: 0.025), "0.925")
        XCTAssertEqual(SVGDocument.tickLabel(0.4, step: 0.2), "0.4")
        XCTAssertEqual(SVGDocument.tickLabel(3, step: 1), "3")
    }

    func testBestEpochLabelledAndLegendUnderThePlot() throws {
        let history = TrainingHistory(epochs: (1...4).map { e in
            EpochRecord(epoch: e, trainLoss: 1 / Double(e), trainAccuracy: 0.5 + 0.1 * Double(e),
                        validationLoss: 1.2 / Double(e), validationAccuracy: 0.5, seconds: 1)
        })
        let svg = history.svg(bestEpoch: 3)
        XCTAssertEqual(svg.components(separatedBy: ">best: epoch 3</text>").count - 1, 2, "one label a panel")
        // Legend entries sit below the x axis (y 270) and its label.
        let legend = try XCTUnwrap(svg.range(of: #"<text x="[0-9.]+" y="([0-9.]+)" text-anchor="start">train</text>"#, options: .regularExpression))
        let y = Double(svg[legend].split(separator: "\"")[3])!
        XCTAssertGreaterThan(y, 300)
    }
}
