/// The positions of the `k` largest values, largest first; ties go to the earlier position.
public func topIndices<C: Collection>(of values: C, k: Int) -> [C.Index] where C.Element == Float {
    values.indices.sorted { values[$0] > values[$1] || (values[$0] == values[$1] && $0 < $1) }.prefix(k).map { $0 }
}

extension Tensor {
    /// The `k` largest values of each row of a `[rows, ...]` tensor (every element after the
    /// first dimension is one row), largest first, with their positions in the row.
    public func topK(_ k: Int) -> [[(index: Int, value: Float)]] {
        let rows = rank >= 1 ? shape[0] : 1
        let width = max(elementCount / max(rows, 1), 1)
        let values = floats
        return (0..<rows).map { r in
            let row = values[(r * width)..<((r + 1) * width)]
            return topIndices(of: row, k: k).map { (index: $0 - r * width, value: row[$0]) }
        }
    }
}
