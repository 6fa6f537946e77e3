extension Reference {
    /// `[d0, ..., dn] -> [d0·...·d(axis-1), d(axis)·...·dn]`.
    public static func flatten(_ x: Tensor, axis: Int) throws -> Tensor {
        let a = axis < 0 ? axis + x.rank : axis
        guard a >= 0 && a <= x.rank else {
            throw GraftError(.badInput, "axis \(axis) is out of range for rank \(x.rank)", op: "Flatten")
        }
        return x.reshaped([Array(x.shape[..<a]).elementCount, Array(x.shape[a...]).elementCount])
    }

    /// The target sizes of `Reshape`: 0 copies the input's size (unless `allowZero`), -1 is inferred.
    public static func reshapeTarget(input: [Int], shape: [Int64], allowZero: Bool) throws -> [Int] {
        var out = shape.map { Int($0) }
        var inferred: Int?
        for i in out.indices {
            if out[i] == 0 && !allowZero {
                guard i < input.count else {
                    throw GraftError(.badInput, "shape \(shape) copies dimension \(i) of \(input), which does not exist", op: "Reshape")
                }
                out[i] = input[i]
            } else if out[i] == -1 {
                guard inferred == nil else {
                    throw GraftError(.badInput, "shape \(shape) has more than one -1", op: "Reshape")
                }
                inferred = i
            } else if out[i] < 0 {
                throw GraftError(.badInput, "shape \(shape) has a negative size", op: "Reshape")
            }
        }
        if let i = inferred {
            guard let known = product(out.enumerated().filter { $0.offset != i }.map(\.element)),
                  known > 0, input.elementCount % known == 0 else {
                throw GraftError(.badInput, "cannot reshape \(input) to \(shape)", op: "Reshape")
            }
            out[i] = input.elementCount / known
        }
        guard product(out) == input.elementCount else {
            throw GraftError(.badInput, "cannot reshape \(input) (\(input.elementCount) elements) to \(shape)", op: "Reshape")
        }
        return out
    }

    public static func reshape(_ x: Tensor, shape: Tensor, allowZero: Bool) throws -> Tensor {
        x.reshaped(try reshapeTarget(input: x.shape, shape: try integers(shape, "the shape", op: "Reshape").map(Int64.init), allowZero: allowZero))
    }

    /// A tensor of the shape held by `shape` (int64), every element `value`.
    public static func constantOfShape(_ shape: Tensor, value: Tensor) throws -> Tensor {
        let sizes = try integers(shape, "the shape", op: "ConstantOfShape")
        guard value.elementCount == 1 else {
            throw GraftError(.badInput, "value must hold one element, it holds \(value.elementCount)", op: "ConstantOfShape")
        }
        let count = try checkedElementCount(sizes, value.dtype, op: "ConstantOfShape"), size = value.dtype.byteSize
        var out = Tensor(zeros: sizes, dtype: value.dtype)
        value.withUnsafeBytes { v in
            out.withUnsafeMutableBytes { o in
                for i in 0..<count { (o.baseAddress! + i * size).copyMemory(from: v.baseAddress!, byteCount: size) }
            }
        }
        return out
    }

    /// The clamped `start..<end` range of `Shape`'s slicing attributes for rank `rank`.
    public static func shapeRange(rank: Int, start: Int, end: Int?) -> Range<Int> {
        func clamp(_ v: Int) -> Int { min(max(v < 0 ? v + rank : v, 0), rank) }
        let s = clamp(start), e = clamp(end ?? rank)
        return s..<max(s, e)
    }

    public static func shape(_ x: Tensor, start: Int, end: Int?) -> Tensor {
        let dims = Array(x.shape[shapeRange(rank: x.rank, start: start, end: end)])
        return Tensor(shape: [dims.count], int64s: dims.map { Int64($0) })
    }

    /// `Gather` along `axis` with int32/int64 indices (negative ones count from the end).
    public static func gather(_ x: Tensor, indices: Tensor, axis: Int) throws -> Tensor {
        let a = try Reference.axis(axis, rank: x.rank, op: "Gather")
        let shape = Array(x.shape[..<a]) + indices.shape + Array(x.shape[(a + 1)...])
        _ = try checkedElementCount(shape, x.dtype, op: "Gather")
        let idx = try integers(indices, "the indices", op: "Gather").map { i -> Int in
            let j = i < 0 ? i + x.shape[a] : i
            guard j >= 0 && j < x.shape[a] else {
                throw GraftError(.badInput, "index \(i) is out of range for axis of size \(x.shape[a])", op: "Gather")
            }
            return j
        }
        let inner = Array(x.shape[(a + 1)...]).elementCount
        return gatherElements(x, shape: shape) { i in
            let k = i % inner, rest = i / inner
            let j = rest % idx.count, o = rest / idx.count
            return (o * x.shape[a] + idx[j]) * inner + k
        }
    }

    public static func unsqueeze(_ x: Tensor, axes: [Int]) throws -> Tensor {
        let rank = x.rank + axes.count
        let list = try Set(axes.map { try axis($0, rank: rank, op: "Unsqueeze") })
        guard list.count == axes.count else {
            throw GraftError(.badInput, "repeated axes \(axes)", op: "Unsqueeze")
        }
        var shape: [Int] = [], source = x.shape.makeIterator()
        for i in 0..<rank { shape.append(list.contains(i) ? 1 : source.next()!) }
        return x.reshaped(shape)
    }

    public static func squeeze(_ x: Tensor, axes: [Int]?) throws -> Tensor {
        let list = try axes.map { try Set($0.map { try axis($0, rank: x.rank, op: "Squeeze") }) }
        var shape: [Int] = []
        for (i, d) in x.shape.enumerated() {
            if let list, list.contains(i) {
                guard d == 1 else { throw GraftError(.badInput, "cannot squeeze axis \(i) of size \(d)", op: "Squeeze") }
                continue
            }
            if list == nil && d == 1 { continue }
            shape.append(d)
        }
        return x.reshaped(shape)
    }

    public static func concat(_ xs: [Tensor], axis: Int) throws -> Tensor {
        guard let first = xs.first else { throw GraftError(.badInput, "no inputs", op: "Concat") }
        let a = try Reference.axis(axis, rank: first.rank, op: "Concat")
        for x in xs {
            guard x.rank == first.rank, x.dtype == first.dtype,
                  x.shape.enumerated().allSatisfy({ $0.offset == a || $0.element == first.shape[$0.offset] }) else {
                throw GraftError(.badInput, "inputs \(xs.map(\.shape)) do not concatenate on axis \(axis)", op: "Concat")
            }
        }
        var shape = first.shape
        shape[a] = xs.map { $0.shape[a] }.reduce(0, +)
        let outer = Array(first.shape[..<a]).elementCount, inner = Array(first.shape[(a + 1)...]).elementCount
        let size = first.dtype.byteSize
        var out = Tensor(zeros: shape, dtype: first.dtype)
        out.withUnsafeMutableBytes { o in
            var offset = 0
            for o0 in 0..<outer {
                for x in xs {
                    let chunk = x.shape[a] * inner * size
                    x.withUnsafeBytes { src in
                        (o.baseAddress! + offset).copyMemory(from: src.baseAddress! + o0 * chunk, byteCount: chunk)
                    }
                    offset += chunk
                }
            }
        }
        return out
    }

    public static func transpose(_ x: Tensor, perm: [Int]?) throws -> Tensor {
        let p = perm ?? Array((0..<x.rank).reversed())
        guard p.count == x.rank, Set(p) == Set(0..<x.rank) else {
            throw GraftError(.badInput, "perm \(p) is not a permutation of \(x.rank) axes", op: "Transpose")
        }
        let shape = p.map { x.shape[$0] }
        let inStrides = strides(x.shape), outStrides = strides(shape)
        return gatherElements(x, shape: shape) { i in
            var rest = i, src = 0
            for d in 0..<shape.count {
                let q = rest / outStrides[d]
                rest -= q * outStrides[d]
                src += q * inStrides[p[d]]
            }
            return src
        }
    }

    /// Where a `Slice` of a tensor of `shape` starts and how it steps along each axis, and the
    /// shape of the result (starts, ends, axes and steps as their integer tensors give them).
    public static func sliceGeometry(_ shape: [Int], starts: [Int], ends: [Int], axes: [Int]?, steps: [Int]?) throws
        -> (begin: [Int], step: [Int], shape: [Int]) {
        let s = starts, e = ends
        let ax = try (axes ?? Array(0..<s.count)).map { try axis($0, rank: shape.count, op: "Slice") }
        let st = steps ?? [Int](repeating: 1, count: s.count)
        guard s.count == e.count, ax.count == s.count, st.count == s.count, !st.contains(0), Set(ax).count == ax.count else {
            throw GraftError(.badInput, "starts, ends, axes and steps do not match", op: "Slice")
        }
        var begin = [Int](repeating: 0, count: shape.count), step = [Int](repeating: 1, count: shape.count), out = shape
        for (k, a) in ax.enumerated() {
            // Steps clamped to ±2⁴⁰, beyond any tensor's size, take the same elements and cannot overflow.
            let dim = shape[a], stp = min(max(st[k], -(1 << 40)), 1 << 40)
            func clamp(_ v: Int, _ lo: Int, _ hi: Int) -> Int {
                let w = v < 0 ? max(v, Int.min / 2) + dim : min(v, Int.max / 2)
                return min(max(w, lo), hi)
            }
            let b = stp > 0 ? clamp(s[k], 0, dim) : clamp(s[k], -1, dim - 1)
            let en = stp > 0 ? clamp(e[k], 0, dim) : clamp(e[k], -1, dim - 1)
            begin[a] = b
            step[a] = stp
            out[a] = stp > 0 ? max(0, (en - b + stp - 1) / stp) : max(0, (b - en - stp - 1) / -stp)
        }
        return (begin, step, out)
    }

    /// ONNX `Slice` (opset 10+ form: starts, ends, axes and steps as tensors).
    public static func slice(_ x: Tensor, starts: Tensor, ends: Tensor, axes: Tensor?, steps: Tensor?) throws -> Tensor {
        func list(_ t: Tensor) throws -> [Int] { try integers(t, "starts, ends, axes and steps", op: "Slice") }
        let (begin, step, shape) = try sliceGeometry(x.shape, starts: try list(starts), ends: try list(ends),
                                                     axes: try axes.map(list), steps: try steps.map(list))
        let inStrides = strides(x.shape), outStrides = strides(shape)
        return gatherElements(x, shape: shape) { i in
            var rest = i, src = 0
            for d in 0..<shape.count {
                let q = rest / outStrides[d]
                rest -= q * outStrides[d]
                src += (begin[d] + q * step[d]) * inStrides[d]
            }
            return src
        }
    }

    /// The shape `Pad` gives `dims` with `pads` as `[begin..., end...]`; a symbolic size stays
    /// symbolic when unpadded.
    ///
    /// - Throws: `GraftError` when the pads do not fit the rank, crop past the input or overflow.
    public static func paddedShape(_ dims: [Dim], pads p: [Int]) throws -> [Dim] {
        guard p.count == 2 * dims.count else {
            throw GraftError(.badInput, "\(p.count) pads for rank \(dims.count)", op: "Pad")
        }
        return try dims.enumerated().map { i, d in
            let (added, overflow) = p[i].addingReportingOverflow(p[i + dims.count])
            guard let v = d.value else { return !overflow && added == 0 ? d : .symbol("?") }
            let (size, overflow2) = v.addingReportingOverflow(added)
            guard !overflow, !overflow2 else { throw GraftError(.badInput, "pads \(p) are too large", op: "Pad") }
            guard size >= 0 else { throw GraftError(.badInput, "pads \(p) crop past the input", op: "Pad") }
            return .value(size)
        }
    }

    /// Constant-mode `Pad` with `pads` as `[begin..., end...]` (negative pads crop).
    public static func pad(_ x: Tensor, pads: Tensor, value: Tensor?) throws -> Tensor {
        try requireFloat(x, "Pad")
        let p = try integers(pads, "pads", op: "Pad")
        let shape = try paddedShape(x.shape.map(Dim.value), pads: p).map { $0.value! }
        let fill = value?.floats.first ?? 0
        var out = Tensor(shape: shape, floats: [Float](repeating: fill, count: try checkedElementCount(shape, .float32, op: "Pad")))
        let outStrides = strides(shape), inStrides = strides(x.shape)
        x.withUnsafeBufferPointer(as: Float.self) { xp in
            out.withUnsafeMutableBufferPointer(as: Float.self) { op in
                for i in 0..<shape.elementCount {
                    var rest = i, src = 0, inside = true
                    for d in 0..<shape.count {
                        let q = rest / outStrides[d] - p[d]
                        rest %= outStrides[d]
                        if q < 0 || q >= x.shape[d] { inside = false; break }
                        src += q * inStrides[d]
                    }
                    if inside { op[i] = xp[src] }
                }
            }
        }
        return out
    }
}
