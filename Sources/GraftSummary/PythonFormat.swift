import GraftCore
import Foundation

/// Number formatting as Python prints it, so that summaries read exactly like `print(model)`
/// and torchinfo.
enum PythonFormat {
    /// `repr(x)` of a Python float: the shortest digits that round-trip, in positional notation
    /// when the decimal exponent is in [-4, 16), scientific (`1e-05`, `1.5e+16`) otherwise.
    static func repr(_ x: Double) -> String {
        if x.isNaN { return "nan" }
        if x.isInfinite { return x < 0 ? "-inf" : "inf" }
        if x == 0 { return x.sign == .minus ? "-0.0" : "0.0" }
        let (digits, point) = shortestDigits(abs(x))
        let sign = x < 0 ? "-" : ""
        // `point` places the decimal point: x = 0.d1d2... * 10^point.
        if point <= -4 || point > 16 {
            let exponent = point - 1
            let mantissa = digits.count == 1 ? digits : digits.prefix(1) + "." + digits.dropFirst()
            let magnitude = String(abs(exponent))
            return sign + mantissa + (exponent < 0 ? "e-" : "e+") + (magnitude.count < 2 ? "0" : "") + magnitude
        }
        if point <= 0 { return sign + "0." + String(repeating: "0", count: -point) + digits }
        if point >= digits.count { return sign + digits + String(repeating: "0", count: point - digits.count) + ".0" }
        return sign + digits.prefix(point) + "." + digits.dropFirst(point)
    }

    /// `repr` of the Python float a PyTorch module held when ONNX stored it as a 32-bit float:
    /// the shortest decimal that rounds to `x` (what the exporter wrote, `1e-05`, `0.5`).
    static func repr(_ x: Float) -> String {
        repr(Double(x.description) ?? Double(x))
    }

    /// PyTorch's batch-norm momentum `1 - m` from ONNX's momentum `m`, computed on the shortest
    /// decimal of `m`, so that ONNX's `0.9` gives `0.1` and not `0.09999999403953552`.
    static func torchMomentum(fromONNX m: Float) -> String {
        guard let decimal = Decimal(string: m.description), let value = Double((1 - decimal).description) else {
            return repr(1 - Double(m))
        }
        return repr(value)
    }

    /// The shortest round-trip digits of a positive finite `x` and the position of the decimal
    /// point before them.
    private static func shortestDigits(_ x: Double) -> (digits: String, point: Int) {
        // Swift's description already holds the shortest round-trip digits; only the layout differs.
        let text = x.description
        let parts = text.split(separator: "e", maxSplits: 1)
        let exponent = parts.count == 2 ? Int(parts[1])! : 0
        let mantissa = parts[0]
        let integerLength = mantissa.firstIndex(of: ".").map { mantissa.distance(from: mantissa.startIndex, to: $0) } ?? mantissa.count
        var digits = mantissa.filter { $0 != "." }
        var point = integerLength + exponent
        while digits.first == "0" {
            digits.removeFirst()
            point -= 1
        }
        while digits.last == "0" { digits.removeLast() }
        return (String(digits), point)
    }

    /// `f"{n:,}"`: an integer with comma thousands separators.
    static func grouped(_ n: Int) -> String {
        let digits = String(n.magnitude)
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return (n < 0 ? "-" : "") + out
    }

    /// `f"{x:,.2f}"`: two decimals, comma thousands separators.
    static func grouped2(_ x: Double) -> String {
        let fixed = String(format: "%.2f", x)
        let sign = fixed.hasPrefix("-") ? "-" : ""
        let body = fixed.dropFirst(sign.count)
        let dot = body.firstIndex(of: ".")!
        return sign + grouped(Int(body[..<dot])!) + body[dot...]
    }

    /// `str(tuple)` of integers: `(7, 7)`, `(7,)`.
    static func tuple(_ values: [Int]) -> String {
        values.count == 1 ? "(\(values[0]),)" : "(" + values.map(String.init).joined(separator: ", ") + ")"
    }

    /// An int when every value is the same (how torchvision passes square pool sizes), else a tuple.
    static func intOrTuple(_ values: [Int]) -> String {
        if let first = values.first, values.allSatisfy({ $0 == first }) { return String(first) }
        return tuple(values)
    }

    /// `str(list)` of a shape: `[1, 64, 112, 112]`.
    static func list(_ shape: Shape) -> String {
        "[" + shape.dims.map(\.description).joined(separator: ", ") + "]"
    }

    static func bool(_ b: Bool) -> String { b ? "True" : "False" }
}
