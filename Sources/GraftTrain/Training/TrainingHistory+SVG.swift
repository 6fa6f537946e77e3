import Foundation

extension TrainingHistory {
    /// Two plots side by side, loss and accuracy per epoch, training (solid) and validation
    /// (dashed), with the best epoch marked and labelled, round tick values, and the legend
    /// under the plots, off the curves: a standalone SVG document.
    public func svg(bestEpoch: Int? = nil) -> String {
        var doc = SVGDocument(width: 880, height: 340)
        doc.add("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>")
        let loss = [("train", epochs.map { ($0.epoch, $0.trainLoss) }),
                    ("validation", epochs.compactMap { r in r.validationLoss.map { (r.epoch, $0) } })]
        let accuracy = [("train", epochs.map { ($0.epoch, $0.trainAccuracy) }),
                        ("validation", epochs.compactMap { r in r.validationAccuracy.map { (r.epoch, $0) } })]
        let lossTop = max(loss.flatMap { $0.1.map(\.1) }.filter(\.isFinite).max() ?? 1, 1e-3)
        let accuracyBottom = min((accuracy.flatMap { $0.1.map(\.1) }.min() ?? 0) * 10 .rounded(.down) / 10, 0.9)
        doc.panel(title: "Loss", x: 0, series: loss, yRange: 0...lossTop, bestEpoch: bestEpoch, epochs: epochs.count)
        doc.panel(title: "Accuracy", x: 440, series: accuracy, yRange: accuracyBottom...1, bestEpoch: bestEpoch, epochs: epochs.count)
        return doc.text
    }
}

/// A small SVG writer: elements appended as text, numbers printed with two decimals.
struct SVGDocument {
    private(set) var elements: [String] = []
    let width: Int
    let height: Int

    init(width: Int, height: Int) {
        self.width = width
        self.height = height
    }

    var text: String {
        (["<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" font-family=\"sans-serif\" font-size=\"12\">"]
            + elements.map { "  " + $0 } + ["</svg>"]).joined(separator: "\n") + "\n"
    }

    mutating func add(_ element: String) { elements.append(element) }

    static func number(_ x: Double) -> String { String(format: "%.2f", x) }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    mutating func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, stroke: String, extra: String = "") {
        add("<line x1=\"\(Self.number(x1))\" y1=\"\(Self.number(y1))\" x2=\"\(Self.number(x2))\" y2=\"\(Self.number(y2))\" stroke=\"\(stroke)\"\(extra)/>")
    }

    mutating func label(_ s: String, x: Double, y: Double, anchor: String = "middle", extra: String = "") {
        add("<text x=\"\(Self.number(x))\" y=\"\(Self.number(y))\" text-anchor=\"\(anchor)\"\(extra)>\(Self.escape(s))</text>")
    }

    /// One plot: axes with ticks, a polyline with dots per series, a legend, the best epoch as
    /// a dotted vertical line.
    mutating func panel(title: String, x: Double, series: [(String, [(Int, Double)])], yRange: ClosedRange<Double>,
                        bestEpoch: Int?, epochs: Int) {
        let (left, top, plotWidth, plotHeight) = (x + 60, 40.0, 350.0, 230.0)
        let lastEpoch = max(epochs, 2)
        func px(_ epoch: Int) -> Double { left + Double(epoch - 1) / Double(lastEpoch - 1) * plotWidth }
        let ticks = Self.ticks(yRange)
        let yRange = ticks.first!...ticks.last!
        func py(_ v: Double) -> Double {
            let clamped = min(max(v.isFinite ? v : yRange.upperBound, yRange.lowerBound), yRange.upperBound)
            return top + plotHeight - (clamped - yRange.lowerBound) / (yRange.upperBound - yRange.lowerBound) * plotHeight
        }
        label(title, x: left + plotWidth / 2, y: 24, extra: " font-size=\"14\" font-weight=\"bold\"")
        for v in ticks {
            line(left, py(v), left + plotWidth, py(v), stroke: "#e0e0e0")
            label(Self.tickLabel(v, step: ticks.count > 1 ? ticks[1] - ticks[0] : 1), x: left - 6, y: py(v) + 4, anchor: "end")
        }
        let step = max(1, Int((Double(lastEpoch) / 10).rounded(.up)))
        for e in stride(from: 1, through: lastEpoch, by: step) {
            line(px(e), top + plotHeight, px(e), top + plotHeight + 4, stroke: "black")
            label(String(e), x: px(e), y: top + plotHeight + 18)
        }
        label("epoch", x: left + plotWidth / 2, y: top + plotHeight + 36)
        line(left, top, left, top + plotHeight, stroke: "black")
        line(left, top + plotHeight, left + plotWidth, top + plotHeight, stroke: "black")
        if let bestEpoch, bestEpoch >= 1 {
            line(px(bestEpoch), top, px(bestEpoch), top + plotHeight, stroke: "#2ca02c", extra: " stroke-dasharray=\"2 3\"")
            let anchor = bestEpoch * 2 > lastEpoch ? "end" : "start"
            label("best: epoch \(bestEpoch)", x: px(bestEpoch) + (anchor == "end" ? -4 : 4), y: top - 4, anchor: anchor,
                  extra: " fill=\"#2ca02c\"")
        }
        let colors = ["#1f77b4", "#ff7f0e"]
        for (k, (name, points)) in series.enumerated() where !points.isEmpty {
            let color = colors[k % colors.count]
            let dash = k == 0 ? "" : " stroke-dasharray=\"6 4\""
            let coordinates = points.map { "\(Self.number(px($0.0))),\(Self.number(py($0.1)))" }.joined(separator: " ")
            add("<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"\(dash) points=\"\(coordinates)\"/>")
            for (e, v) in points {
                add("<circle cx=\"\(Self.number(px(e)))\" cy=\"\(Self.number(py(v)))\" r=\"2.5\" fill=\"\(color)\"/>")
            }
            // The legend under the axis, where no curve runs.
            let lx = left + Double(k) * 120, ly = top + plotHeight + 56
            line(lx, ly - 4, lx + 20, ly - 4, stroke: color, extra: " stroke-width=\"2\"\(dash)")
            label(name, x: lx + 26, y: ly, anchor: "start")
        }
    }

    /// Four or five tick values at a round step (1, 2, 2.5 or 5 times a power of ten) that
    /// cover `range`, the first and last on or past its ends.
    static func ticks(_ range: ClosedRange<Double>) -> [Double] {
        let span = max(range.upperBound - range.lowerBound, 1e-9)
        let raw = span / 4
        let exponent = Int(log10(raw).rounded(.down))
        let scale = pow(10, Double(abs(exponent)))
        // A value k·m·10^e, computed as k·m / 10^-e for negative e so that 0.6 prints as 0.6.
        func value(_ k: Int, _ m: Double) -> Double { exponent < 0 ? Double(k) * m / scale : Double(k) * m * scale }
        let mantissa = [1, 2, 2.5, 5, 10].first { value(1, $0) >= raw * 0.999 } ?? 10
        let step = value(1, mantissa)
        let first = Int((range.lowerBound / step).rounded(.down))
        let last = Int((range.upperBound / step - 1e-9).rounded(.up))
        return (first...max(first + 1, last)).map { value($0, mantissa) }
    }

    /// A tick value with as many decimals as its step needs (`0.25`, `1.5`, `2`).
    static func tickLabel(_ v: Double, step: Double) -> String {
        let decimals = max(0, Int((-log10(step)).rounded(.up)) + (step * pow(10, (-log10(step)).rounded(.up)) == 2.5 ? 1 : 0))
        return String(format: "%.\(decimals)f", v)
    }
}
