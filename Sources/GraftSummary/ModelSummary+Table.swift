import GraftCore
/// A column of the torchinfo-style table, by torchinfo's `col_names`.
public enum SummaryColumn: String, CaseIterable, Sendable {
    case outputSize = "output_size"
    case numParams = "num_params"
    case multAdds = "mult_adds"
    case trainable

    /// The column's heading, as torchinfo prints it.
    var title: String {
        switch self {
        case .outputSize: return "Output Shape"
        case .numParams: return "Param #"
        case .multAdds: return "Mult-Adds"
        case .trainable: return "Trainable"
        }
    }
}

extension ModelSummary {
    /// The summary as torchinfo 1.8 prints `summary(model, input_size=..., col_names=("output_size",
    /// "num_params", "mult_adds", "trainable"))`: one row per module call, then the totals.
    ///
    /// Rows deeper than `depth` are left out of the table but not of the totals, as in torchinfo;
    /// a row at `depth` shows the parameters and mult-adds of everything under it. Sizes are
    /// float32 bytes as torchinfo counts them, but the input is its tensor's bytes alone (torchinfo
    /// adds the Python object header of its storage, 64 bytes). The mult-adds unit prints as `(G)`
    /// or `(M)`, which torchinfo meant and prints before Python 3.11 (later it prints the enum member,
    /// `(Units.GIGABYTES)`).
    /// - Parameters:
    ///   - depth: the deepest level shown (torchinfo's `depth`, default 3).
    ///   - columns: the columns after the layer's name, in order (torchinfo's `col_names`; its
    ///     default, output size and parameters, keeps the table within 90 columns).
    public func renderTable(depth: Int = 3, columns: [SummaryColumn] = [.outputSize, .numParams]) -> String {
        let columnWidth = 25
        let titles = rows.map { row in
            row.depth > 0 ? "\(className(row)): \(row.depth)-\(row.depthIndex)" : className(row)
        }
        // Wide enough for every title and its tree indent, in steps of 5, never under 40.
        let longest = zip(rows, titles).map { $1.unicodeScalars.count + $0.depth * 5 + 1 }.max() ?? 0
        let nameWidth = longest >= 40 ? (longest + 4) / 5 * 5 : 40
        func line(_ name: String, _ columns: [String]) -> String {
            var text = padded(name, nameWidth) + " "
            for column in columns { text += padded(column, columnWidth) + " " }
            while text.last == " " { text.removeLast() }
            return text + "\n"
        }
        let divider = String(repeating: "=", count: columns.count * columnWidth + nameWidth)
        var text = divider + "\n" + line("Layer (type:depth-idx)", columns.map(\.title)) + divider + "\n"
        for (r, row) in rows.enumerated() where row.depth <= depth {
            let atMaxDepth = row.depth == depth
            let isLeaf = tree.modules[row.module].isLeaf
            let branch = row.depth == 0 ? "" : row.depth == 1 ? "├─" : String(repeating: "│    ", count: row.depth - 1) + "└─"
            let parameters: String
            if row.parameters == 0 {
                parameters = "--"
            } else if row.isRecursive {
                parameters = "(recursive)"
            } else if isLeaf || atMaxDepth {
                parameters = PythonFormat.grouped(row.parameters)
            } else {
                parameters = row.leftoverParameters > 0 ? PythonFormat.grouped(row.leftoverParameters) : "--"
            }
            // A container shows mult-adds only where the table stops descending, and only if it
            // has parameters (torchinfo checks its own, oddly counted, mult-adds for zero).
            let multAdds = isLeaf ? (row.multAdds > 0 ? PythonFormat.grouped(row.multAdds) : "--")
                : (atMaxDepth && row.parameters > 0 ? PythonFormat.grouped(row.multAdds) : "--")
            let cells: [SummaryColumn: String] = [
                .outputSize: row.outputShape.map(PythonFormat.list) ?? "--", .numParams: parameters, .multAdds: multAdds,
                .trainable: row.parameters > 0 ? row.trainability.text : "--",
            ]
            text += line(branch + titles[r], columns.map { cells[$0]! })
        }
        let units = totals.multAdds >= 1_000_000_000_000 ? ("T", 1e12) : totals.multAdds >= 1_000_000_000 ? ("G", 1e9) : ("M", 1e6)
        let scaled = Double(totals.multAdds) / units.1
        let multAdds = scaled == scaled.rounded() ? PythonFormat.grouped(Int(scaled)) : PythonFormat.grouped2(scaled)
        func megabytes(_ bytes: Int) -> String { String(format: "%.2f", Double(bytes) / 1e6) }
        text += divider + "\n"
        text += "Total params: \(PythonFormat.grouped(totals.parameters))\n"
        text += "Trainable params: \(PythonFormat.grouped(totals.trainableParameters))\n"
        text += "Non-trainable params: \(PythonFormat.grouped(totals.parameters - totals.trainableParameters))\n"
        text += "Total mult-adds (\(units.0)): \(multAdds)\n"
        text += divider + "\n"
        text += "Input size (MB): \(megabytes(totals.inputBytes))\n"
        text += "Forward/backward pass size (MB): \(megabytes(totals.forwardBackwardBytes))\n"
        text += "Params size (MB): \(megabytes(totals.parameterBytes))\n"
        text += "Estimated Total Size (MB): \(megabytes(totals.totalBytes))\n"
        return text + divider
    }
}

/// `f"{text:<{width}}"`: left-aligned in `width` code points.
private func padded(_ text: String, _ width: Int) -> String {
    text + String(repeating: " ", count: max(0, width - text.unicodeScalars.count))
}
