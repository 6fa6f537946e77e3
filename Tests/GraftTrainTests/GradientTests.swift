import GraftCore
import GraftTestSupport
@testable import GraftTrain
import XCTest

/// Every op's reverse-mode gradient against central finite differences of the scalar
/// `f = Σ c ⊙ op(x)` (random `c`), in double-precision sums of single-precision ops.
final class GradientTests: XCTestCase {
    var random = SeededGenerator(seed: 42)

    func matrix(_ rows: Int, _ columns: Int, scale: Float = 1) -> Matrix {
        Matrix(rows: rows, columns: columns, values: (0..<(rows * columns)).map { _ in random.uniform(-scale, scale) })
    }

    /// `Σ c ⊙ y` in double precision.
    func dot(_ c: Matrix, _ y: Matrix) -> Double {
        zip(c.values, y.values).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
    }

    /// Checks `analytic` against `(f(v + h) − f(v − h)) / 2h` for every element of `values`.
    func assertGradient(_ analytic: [Float], of values: [Float], h: Float = 1e-2, atol: Double = 2e-3, rtol: Double = 1e-2,
                        _ label: String, file: StaticString = #filePath, line: UInt = #line, f: ([Float]) -> Double) {
        XCTAssertEqual(analytic.count, values.count, label, file: file, line: line)
        var worst = 0.0
        for i in values.indices {
            var plus = values, minus = values
            plus[i] += h
            minus[i] -= h
            let numeric = (f(plus) - f(minus)) / (Double(plus[i]) - Double(minus[i]))
            let error = abs(numeric - Double(analytic[i])) / (atol + rtol * abs(numeric))
            worst = max(worst, error)
        }
        XCTAssertLessThanOrEqual(worst, 1, "\(label): worst |Δ| / tolerance", file: file, line: line)
    }

    func testLinear() {
        for transB in [true, false] {
            let x = matrix(5, 7), c = matrix(5, 3)
            let w = transB ? matrix(3, 7) : matrix(7, 3)
            let b = (0..<3).map { _ in random.uniform(-1, 1) }
            let g = LinearOp.backward(c, x: x, weight: w, transB: transB, needsInputGradient: true)
            assertGradient(g.dx!.values, of: x.values, "dx transB \(transB)") {
                dot(c, LinearOp.forward(Matrix(rows: 5, columns: 7, values: $0), weight: w, bias: b, transB: transB))
            }
            assertGradient(g.dw.values, of: w.values, "dW transB \(transB)") {
                dot(c, LinearOp.forward(x, weight: Matrix(rows: w.rows, columns: w.columns, values: $0), bias: b, transB: transB))
            }
            assertGradient(g.db, of: b, "db transB \(transB)") {
                dot(c, LinearOp.forward(x, weight: w, bias: $0, transB: transB))
            }
            XCTAssertNil(LinearOp.backward(c, x: x, weight: w, transB: transB, needsInputGradient: false).dx)
        }
    }

    func testLinearMatchesTheReferenceGemm() throws {
        let x = matrix(4, 6), w = matrix(5, 6)
        let b = (0..<5).map { _ in random.uniform(-1, 1) }
        let reference = try Reference.gemm(x.tensor, w.tensor, Tensor(shape: [5], floats: b), attributes: GemmAttributes(transB: true))
        assertClose(LinearOp.forward(x, weight: w, bias: b, transB: true).tensor, reference, atol: 1e-6, rtol: 1e-6)
    }

    func testReLU() {
        // Away from the kink, where the function is smooth for ±h.
        var x = matrix(4, 6)
        x.values = x.values.map { abs($0) < 0.05 ? $0 + 0.1 : $0 }
        let c = matrix(4, 6)
        let y = ReLUOp.forward(x)
        XCTAssertEqual(y.values, x.values.map { max($0, 0) })
        assertGradient(ReLUOp.backward(c, output: y).values, of: x.values, h: 1e-2, "relu") {
            dot(c, ReLUOp.forward(Matrix(rows: 4, columns: 6, values: $0)))
        }
        XCTAssertEqual(ReLUOp.backward(Matrix(rows: 1, columns: 1, values: [1]), output: Matrix(rows: 1, columns: 1, values: [0])).values, [0],
                       "zero gradient at 0, as PyTorch")
    }

    func testDropout() {
        let x = matrix(10, 12), c = matrix(10, 12)
        var r = SeededGenerator(seed: 5)
        let mask = DropoutOp.mask(ratio: 0.3, count: x.values.count, random: &r)!
        XCTAssertEqual(Set(mask), [0, 1 / Float(0.7)])
        assertGradient(DropoutOp.backward(c, mask: mask).values, of: x.values, "dropout") {
            dot(c, DropoutOp.forward(Matrix(rows: 10, columns: 12, values: $0), mask: mask))
        }
        let large = DropoutOp.mask(ratio: 0.3, count: 20_000, random: &r)!
        XCTAssertEqual(Double(large.filter { $0 != 0 }.count) / 20_000, 0.7, accuracy: 0.01, "kept with probability 1 − p")
        XCTAssertNil(DropoutOp.mask(ratio: 0, count: 10, random: &r), "p = 0 drops nothing")
        var again = SeededGenerator(seed: 5)
        XCTAssertEqual(DropoutOp.mask(ratio: 0.3, count: x.values.count, random: &again), mask, "seeded")
    }

    func testLogSoftmax() throws {
        let x = matrix(6, 5, scale: 3), c = matrix(6, 5)
        let y = LogSoftmaxOp.forward(x)
        assertClose(y.tensor, try Reference.softmax(x.tensor, axis: 1, coerce2D: false, log: true), atol: 1e-6, rtol: 1e-5)
        assertGradient(LogSoftmaxOp.backward(c, output: y).values, of: x.values, h: 1e-2, "log-softmax") {
            dot(c, LogSoftmaxOp.forward(Matrix(rows: 6, columns: 5, values: $0)))
        }
    }

    func testNLLLoss() {
        let y = LogSoftmaxOp.forward(matrix(6, 3, scale: 2))
        let labels = [0, 2, 1, 1, 0, 2]
        let expected = -labels.enumerated().map { Double(y[$0.offset, $0.element]) }.reduce(0, +) / 6
        XCTAssertEqual(Double(NLLLossOp.forward(y, labels: labels)), expected, accuracy: 1e-6)
        assertGradient(NLLLossOp.backward(rows: 6, columns: 3, labels: labels).values, of: y.values, "nll") {
            Double(NLLLossOp.forward(Matrix(rows: 6, columns: 3, values: $0), labels: labels))
        }
    }

    /// The whole head, dropout on with a fixed mask stream: every parameter's gradient.
    func testWholeHead() throws {
        let trunk = linearModel(features: 12, classes: 3)
        let graph = try ClassifierHead(classNames: ["a", "b", "c"], hidden: [9, 7], dropout: [0.25, 0.5]).graft(onto: trunk, seed: 11)
        let head = try HeadNetwork(graph: graph)
        XCTAssertEqual(head.parameters.map(\.name), ["fc.1.weight", "fc.1.bias", "fc.4.weight", "fc.4.bias", "fc.6.weight", "fc.6.bias"])
        // Rows whose ReLU inputs all lie farther from the kink than a step can move them.
        var x = matrix(4, 12, scale: 2)
        func margin(_ x: Matrix) -> Float {
            var r: SeededGenerator? = SeededGenerator(seed: 9)
            let tape = head.forward(x, random: &r)
            return head.layers.indices.filter { head.layers[$0] == .relu }.flatMap { tape.inputs[$0].values.map(abs) }.min()!
        }
        while margin(x) < 0.005 { x = matrix(4, 12, scale: 2) }
        let labels = [0, 1, 2, 1]
        var r: SeededGenerator? = SeededGenerator(seed: 9)
        let g = head.lossAndGradients(x, labels: labels, random: &r)
        for (p, parameter) in head.parameters.enumerated() {
            assertGradient(g.gradients[p], of: parameter.values, h: 1e-3, parameter.name) { values in
                var probe = head
                probe.parameters[p].values = values
                var same: SeededGenerator? = SeededGenerator(seed: 9)
                return Double(probe.lossAndGradients(x, labels: labels, random: &same).loss)
            }
        }
    }
}
