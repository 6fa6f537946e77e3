/// What shape inference knows of a value: its type, its (possibly symbolic) shape, and for small
/// integer tensors (shapes being computed, as in `Shape → Gather → Concat → Reshape`) the
/// elements themselves, which may be symbolic too.
public struct ValueFact: Sendable, Equatable {
    public var dtype: DType
    public var shape: Shape
    /// The elements of a rank-0 or rank-1 integer tensor, when known.
    public var elements: [Dim]?

    public init(dtype: DType, shape: Shape, elements: [Dim]? = nil) {
        self.dtype = dtype
        self.shape = shape
        self.elements = elements
    }

    /// The fact of a constant: its shape, and its elements when it is a small integer tensor.
    public init(constant t: Tensor) {
        self.dtype = t.dtype
        self.shape = Shape(t.shape)
        if !t.dtype.isFloatingPoint && t.rank <= 1 && t.elementCount <= 64 {
            self.elements = t.int64s.map { .value(Int($0)) }
        }
    }

    /// The elements as integers, when all are known numbers.
    public var integers: [Int]? {
        guard let elements else { return nil }
        var out: [Int] = []
        for e in elements {
            guard let v = e.value else { return nil }
            out.append(v)
        }
        return out
    }
}

/// A product of dimensions kept as a number times a multiset of symbols, so that reshapes of a
/// symbolic batch (`[N, 2048, 1, 1] -> [N, -1]`) infer `-1 = 2048`.
struct DimProduct {
    var factor = 1
    var symbols: [String] = []

    init(_ dims: [Dim]) {
        for d in dims {
            switch d {
            case .value(let v):
                // Saturates: an overflowing product is refused later as too large.
                let (product, overflow) = factor.multipliedReportingOverflow(by: v)
                factor = overflow ? Int.max : product
            case .symbol(let s): symbols.append(s)
            }
        }
        symbols.sort()
    }

    /// The product as one dimension: a number, a single symbol, or a compound symbol `N*C`.
    var dim: Dim {
        if symbols.isEmpty { return .value(factor) }
        if factor == 1 && symbols.count == 1 { return .symbol(symbols[0]) }
        return .symbol(((factor == 1 ? [] : [String(factor)]) + symbols).joined(separator: "*"))
    }

    /// `self / other`, when it divides exactly.
    func divided(by other: DimProduct) -> Dim? {
        var rest = symbols
        for s in other.symbols {
            guard let i = rest.firstIndex(of: s) else { return nil }
            rest.remove(at: i)
        }
        guard other.factor != 0, factor % other.factor == 0 else { return nil }
        var q = DimProduct([])
        q.factor = factor / other.factor
        q.symbols = rest
        return q.dim
    }
}

extension Graph {
    /// Infers the type and shape of every value, in topological order.
    ///
    /// Every shape is checked against `Reference.maximumTensorBytes` (its symbolic dimensions
    /// counted as 1), so a declared input or an op whose attributes or constant inputs would
    /// make a huge tensor is refused here, before anything is allocated.
    ///
    /// - Parameter inputShapes: shapes to use for graph inputs instead of the declared ones.
    /// - Throws: `GraftError` naming the first node whose inputs do not fit its op.
    public func inferShapes(inputShapes: [String: Shape] = [:]) throws -> [String: ValueFact] {
        var facts: [String: ValueFact] = [:]
        for (name, t) in constants { facts[name] = ValueFact(constant: t) }
        for input in inputs {
            let shape = inputShapes[input.name] ?? input.shape
            do {
                try Reference.checkSize(shape.dims, input.dtype, "the declared shape")
            } catch let error as GraftError {
                var e = error
                e.tensor = input.name
                throw e
            }
            facts[input.name] = ValueFact(dtype: input.dtype, shape: shape)
        }
        for index in try topologicalOrder() {
            let node = nodes[index]
            let inputFacts = node.inputs.map { $0.isEmpty ? nil : facts[$0] }
            let outputFacts: [ValueFact]
            do {
                outputFacts = try node.op.inferOutputs(inputFacts)
                for fact in outputFacts { try Reference.checkSize(fact.shape.dims, fact.dtype) }
            } catch let error as GraftError {
                throw error.atNode(node.name, op: node.op.name)
            }
            for (name, fact) in zip(node.outputs, outputFacts) where !name.isEmpty { facts[name] = fact }
        }
        return facts
    }
}

extension Op {
    /// The facts of the outputs, given those of the inputs (nil for absent ones; constants carry
    /// their small integer elements).
    public func inferOutputs(_ inputs: [ValueFact?]) throws -> [ValueFact] {
        func fact(_ i: Int) throws -> ValueFact {
            guard i < inputs.count, let f = inputs[i] else {
                throw GraftError(.badInput, "input \(i) is missing")
            }
            return f
        }
        func integers(_ i: Int, _ what: String) throws -> [Int] {
            guard let v = try fact(i).integers else {
                throw GraftError(.badInput, "\(what) (input \(i)) must be known before running; it is computed from data")
            }
            return v
        }
        func same(_ i: Int = 0) throws -> [ValueFact] {
            let f = try fact(i)
            return [ValueFact(dtype: f.dtype, shape: f.shape)]
        }
        func rank4(_ f: ValueFact) throws -> [Dim] {
            guard f.shape.rank == 4 else {
                throw GraftError(.badInput, "expects a rank-4 NCHW input, got \(f.shape)")
            }
            return f.shape.dims
        }
        func spatial(_ dims: [Dim], _ window: Window) -> [Dim] {
            guard let h = dims[2].value, let w = dims[3].value else { return [.symbol("H'"), .symbol("W'")] }
            return window.resolve(input: [h, w]).output.map(Dim.value)
        }

        switch self {
        case .conv(let a):
            let x = try fact(0), w = try fact(1)
            let xd = try rank4(x)
            guard w.shape.rank == 4, let kh = w.shape.dims[2].value, let kw = w.shape.dims[3].value else {
                throw GraftError(.badInput, "weight of shape \(w.shape); expected [Cout, Cin/group, kH, kW]")
            }
            guard a.window.kernel == [kh, kw] else {
                throw GraftError(.badInput, "kernel_shape \(a.window.kernel) does not match the weight \(w.shape)")
            }
            guard a.group >= 1 else { throw GraftError(.badInput, "group \(a.group) is not positive") }
            if let cout = w.shape.dims[0].value, cout % a.group != 0 {
                throw GraftError(.badInput, "group \(a.group) does not divide the \(cout) output channels of the weight \(w.shape)")
            }
            if let cin = xd[1].value, let cpg = w.shape.dims[1].value, cpg.multipliedReportingOverflow(by: a.group) != (cin, false) {
                let expected = cpg.multipliedReportingOverflow(by: a.group)
                throw GraftError(.badInput, "input has \(cin) channels; the weight \(w.shape) with group \(a.group) expects \(expected.overflow ? "more than can be counted" : "\(expected.partialValue)")")
            }
            if inputs.count > 2, let b = inputs[2] {
                guard b.shape.rank == 1, b.shape.dims[0] == w.shape.dims[0] || b.shape.dims[0].value == nil || w.shape.dims[0].value == nil else {
                    throw GraftError(.badInput, "bias of shape \(b.shape) for a weight of shape \(w.shape); expected [\(w.shape.dims[0])]")
                }
            }
            try a.window.validate()
            return [ValueFact(dtype: x.dtype, shape: Shape([xd[0], w.shape.dims[0]] + spatial(xd, a.window)))]
        case .maxPool(let window), .averagePool(let window, _):
            let x = try fact(0)
            let xd = try rank4(x)
            if let h = xd[2].value, let w = xd[3].value { try window.validatePooling(input: [h, w]) } else { try window.validate() }
            return [ValueFact(dtype: x.dtype, shape: Shape([xd[0], xd[1]] + spatial(xd, window)))]
        case .globalAveragePool, .globalMaxPool:
            let x = try fact(0)
            guard x.shape.rank >= 3 else { throw GraftError(.badInput, "expects rank 3 or more, got \(x.shape)") }
            return [ValueFact(dtype: x.dtype, shape: Shape(Array(x.shape.dims[0..<2]) + [Dim](repeating: .value(1), count: x.shape.rank - 2)))]
        case .batchNorm:
            let x = try fact(0)
            guard x.shape.rank >= 2 else { throw GraftError(.badInput, "input of shape \(x.shape); batch normalization needs rank 2 or more") }
            for i in 1...4 {
                let p = try fact(i)
                guard p.dtype == x.dtype else { throw GraftError(.badInput, "parameter \(i) is \(p.dtype); the input is \(x.dtype)") }
                guard p.shape.rank == 1, p.shape.dims[0] == x.shape.dims[1] || p.shape.dims[0].value == nil || x.shape.dims[1].value == nil else {
                    throw GraftError(.badInput, "parameter \(i) has shape \(p.shape); the input \(x.shape) has \(x.shape.dims[1]) channels")
                }
            }
            return try same()
        case .relu, .sigmoid, .tanh, .leakyRelu, .neg, .exp, .sqrt:
            return try same()
        case .softmax(let axis, _), .logSoftmax(let axis, _):
            _ = try Reference.axis(axis, rank: try fact(0).shape.rank, op: name)
            return try same()
        case .identity:
            return [try fact(0)]
        case .dropout:
            let x = try fact(0)
            return [x, ValueFact(dtype: .bool, shape: x.shape)]
        case .reduceMean(let axes, let keepDims, let noop):
            let x = try fact(0)
            let list = inputs.count > 1 && inputs[1] != nil ? try integers(1, "axes") : (axes ?? [])
            if list.isEmpty && noop { return [x] }
            let set = try Set((list.isEmpty ? Array(0..<x.shape.rank) : list).map { try Reference.axis($0, rank: x.shape.rank, op: name) })
            var dims: [Dim] = []
            for (i, d) in x.shape.dims.enumerated() {
                if set.contains(i) { if keepDims { dims.append(.value(1)) } } else { dims.append(d) }
            }
            return [ValueFact(dtype: x.dtype, shape: Shape(dims))]
        case .add, .sub, .mul, .div, .sum:
            var result = try fact(0)
            for i in 1..<max(inputs.count, 1) {
                let other = try fact(i)
                guard other.dtype == result.dtype else {
                    throw GraftError(.badInput, "operands of different types \(result.dtype) and \(other.dtype)")
                }
                result = try Op.broadcast(result, other, self)
            }
            return [result]
        case .flatten(let axis):
            let x = try fact(0)
            let a = axis < 0 ? axis + x.shape.rank : axis
            guard a >= 0 && a <= x.shape.rank else { throw GraftError(.badInput, "axis \(axis) is out of range for \(x.shape)") }
            return [ValueFact(dtype: x.dtype, shape: Shape([DimProduct(Array(x.shape.dims[..<a])).dim, DimProduct(Array(x.shape.dims[a...])).dim]))]
        case .reshape(let allowZero):
            let x = try fact(0)
            guard let target = try fact(1).elements else {
                throw GraftError(.badInput, "the target shape (input 1) must be known before running; it is computed from data")
            }
            var dims: [Dim] = []
            var inferred: Int?
            for (i, d) in target.enumerated() {
                if d == .value(0) && !allowZero {
                    guard i < x.shape.rank else { throw GraftError(.badInput, "shape copies dimension \(i) of \(x.shape), which does not exist") }
                    dims.append(x.shape.dims[i])
                } else if d == .value(-1) {
                    guard inferred == nil else { throw GraftError(.badInput, "the target shape has more than one -1") }
                    inferred = i
                    dims.append(d)
                } else {
                    if let v = d.value, v < 0 { throw GraftError(.badInput, "the target shape has a negative size \(v)") }
                    dims.append(d)
                }
            }
            if let i = inferred {
                var others = dims
                others.remove(at: i)
                dims[i] = DimProduct(x.shape.dims).divided(by: DimProduct(others)) ?? .symbol("?")
                if let v = dims[i].value, v == 0 && DimProduct(x.shape.dims).dim != .value(0) {
                    throw GraftError(.badInput, "cannot reshape \(x.shape) to \(target)")
                }
            }
            if let total = DimProduct(x.shape.dims).dim.value, let newTotal = DimProduct(dims).dim.value, total != newTotal {
                throw GraftError(.badInput, "cannot reshape \(x.shape) (\(total) elements) to \(Shape(dims))")
            }
            return [ValueFact(dtype: x.dtype, shape: Shape(dims), elements: x.elements)]
        case .gemm(let a):
            let x = try fact(0), w = try fact(1)
            guard x.shape.rank == 2, w.shape.rank == 2 else {
                throw GraftError(.badInput, "expects 2-D operands, got \(x.shape) and \(w.shape)")
            }
            let (m, k) = a.transA ? (x.shape.dims[1], x.shape.dims[0]) : (x.shape.dims[0], x.shape.dims[1])
            let (kb, n) = a.transB ? (w.shape.dims[1], w.shape.dims[0]) : (w.shape.dims[0], w.shape.dims[1])
            if let k = k.value, let kb = kb.value, k != kb {
                throw GraftError(.badInput, "inner dimensions differ: \(x.shape) and \(w.shape)")
            }
            if inputs.count > 2, let c = inputs[2] {
                let fits = zip(c.shape.dims.reversed(), [n, m]).allSatisfy { d, o in d == .value(1) || d == o || d.value == nil || o.value == nil }
                guard c.shape.rank <= 2, fits else {
                    throw GraftError(.badInput, "C of shape \(c.shape) does not broadcast to \(Shape([m, n]))")
                }
            }
            return [ValueFact(dtype: x.dtype, shape: Shape([m, n]))]
        case .matMul:
            let x = try fact(0), w = try fact(1)
            guard x.shape.rank >= 1, w.shape.rank >= 1 else { throw GraftError(.badInput, "MatMul of scalars") }
            let xd = x.shape.rank == 1 ? [.value(1)] + x.shape.dims : x.shape.dims
            let wd = w.shape.rank == 1 ? w.shape.dims + [.value(1)] : w.shape.dims
            if let k = xd.last!.value, let kb = wd[wd.count - 2].value, k != kb {
                throw GraftError(.badInput, "shapes \(x.shape) and \(w.shape) do not multiply")
            }
            let batch = try Op.broadcastDims(Array(xd.dropLast(2)), Array(wd.dropLast(2)))
            var dims = batch
            if x.shape.rank > 1 { dims.append(xd[xd.count - 2]) }
            if w.shape.rank > 1 { dims.append(wd.last!) }
            return [ValueFact(dtype: x.dtype, shape: Shape(dims))]
        case .constantOfShape(let value):
            guard let dims = try fact(0).elements else {
                throw GraftError(.badInput, "the shape (input 0) must be known before running")
            }
            guard value.elementCount == 1 else {
                throw GraftError(.badInput, "value must hold one element, it holds \(value.elementCount)")
            }
            try Reference.checkSize(dims, value.dtype)
            var elements: [Dim]?
            if dims.count <= 1, !value.dtype.isFloatingPoint, let count = dims.first?.value, count <= 64 {
                elements = [Dim](repeating: .value(Int(value.int64s[0])), count: count)
            }
            return [ValueFact(dtype: value.dtype, shape: Shape(dims), elements: elements)]
        case .shape(let start, let end):
            let x = try fact(0)
            let dims = Array(x.shape.dims[Reference.shapeRange(rank: x.shape.rank, start: start, end: end)])
            return [ValueFact(dtype: .int64, shape: Shape([dims.count]), elements: dims)]
        case .gather(let axis):
            let x = try fact(0), idx = try fact(1)
            let a = try Reference.axis(axis, rank: x.shape.rank, op: name)
            var elements: [Dim]?
            if let e = x.elements, x.shape.rank == 1, let i = idx.integers, idx.shape.rank <= 1 {
                elements = try i.map { v in
                    let j = v < 0 ? v + e.count : v
                    guard j >= 0 && j < e.count else { throw GraftError(.badInput, "index \(v) is out of range for \(e.count) elements") }
                    return e[j]
                }
            }
            return [ValueFact(dtype: x.dtype, shape: Shape(Array(x.shape.dims[..<a]) + idx.shape.dims + Array(x.shape.dims[(a + 1)...])), elements: elements)]
        case .unsqueeze(let axes):
            let x = try fact(0)
            let list = try axes ?? integers(1, "axes")
            let rank = x.shape.rank + list.count
            let set = try Set(list.map { try Reference.axis($0, rank: rank, op: name) })
            guard set.count == list.count else { throw GraftError(.badInput, "repeated axes \(list)") }
            var dims: [Dim] = [], source = x.shape.dims.makeIterator()
            for i in 0..<rank { dims.append(set.contains(i) ? .value(1) : source.next()!) }
            return [ValueFact(dtype: x.dtype, shape: Shape(dims), elements: rank <= 1 ? x.elements : nil)]
        case .squeeze(let axes):
            let x = try fact(0)
            let list = try axes ?? (inputs.count > 1 && inputs[1] != nil ? integers(1, "axes") : nil)
            let set = try list.map { try Set($0.map { try Reference.axis($0, rank: x.shape.rank, op: name) }) }
            var dims: [Dim] = []
            for (i, d) in x.shape.dims.enumerated() {
                if let set, set.contains(i) {
                    if let v = d.value, v != 1 { throw GraftError(.badInput, "cannot squeeze axis \(i) of size \(v)") }
                    continue
                }
                if set == nil && d == .value(1) { continue }
                dims.append(d)
            }
            return [ValueFact(dtype: x.dtype, shape: Shape(dims), elements: dims.count <= 1 ? x.elements : nil)]
        case .concat(let axis):
            let xs = try (0..<inputs.count).map(fact)
            guard let first = xs.first else { throw GraftError(.badInput, "no inputs") }
            let a = try Reference.axis(axis, rank: first.shape.rank, op: name)
            var dims = first.shape.dims
            var along: [Dim] = []
            for x in xs {
                guard x.shape.rank == first.shape.rank, x.dtype == first.dtype else {
                    throw GraftError(.badInput, "inputs \(xs.map(\.shape)) do not concatenate on axis \(axis)")
                }
                along.append(x.shape.dims[a])
            }
            let total = along.reduce(Dim.value(0)) { acc, d in
                if let x = acc.value, let y = d.value { return .value(x + y) }
                return .symbol("?")
            }
            dims[a] = xs.count == 1 ? along[0] : total
            let elements: [Dim]? = first.shape.rank == 1 && xs.allSatisfy({ $0.elements != nil }) ? xs.flatMap { $0.elements! } : nil
            return [ValueFact(dtype: first.dtype, shape: Shape(dims), elements: elements)]
        case .transpose(let perm):
            let x = try fact(0)
            let p = perm ?? Array((0..<x.shape.rank).reversed())
            guard p.count == x.shape.rank, Set(p) == Set(0..<x.shape.rank) else {
                throw GraftError(.badInput, "perm \(p) is not a permutation of \(x.shape.rank) axes")
            }
            return [ValueFact(dtype: x.dtype, shape: Shape(p.map { x.shape.dims[$0] }))]
        case .slice:
            let x = try fact(0)
            guard let sizes = x.shape.concrete else {
                throw GraftError(.badInput, "slicing a tensor of symbolic shape \(x.shape) is not supported")
            }
            func list(_ i: Int) throws -> [Int]? {
                guard i < inputs.count, inputs[i] != nil else { return nil }
                return try integers(i, "slice parameter")
            }
            let (begin, step, shape) = try Reference.sliceGeometry(sizes, starts: try integers(1, "starts"), ends: try integers(2, "ends"),
                                                                   axes: try list(3), steps: try list(4))
            var elements: [Dim]?
            if let e = x.elements, x.shape.rank == 1, e.count == sizes[0] {
                elements = (0..<shape[0]).map { e[begin[0] + $0 * step[0]] }
            }
            return [ValueFact(dtype: x.dtype, shape: Shape(shape), elements: elements)]
        case .pad:
            let x = try fact(0)
            let p = try integers(1, "pads")
            return [ValueFact(dtype: x.dtype, shape: Shape(try Reference.paddedShape(x.shape.dims, pads: p)))]
        case .quantizeLinear(let axis), .dequantizeLinear(let axis):
            let x = try fact(0), scale = try fact(1)
            let zero = inputs.count > 2 ? inputs[2] : nil
            let quantize = name == "QuantizeLinear"
            guard scale.dtype == .float32 else { throw GraftError(.badInput, "the scale is \(scale.dtype); only float32 is supported") }
            guard scale.shape.rank <= 1 else { throw GraftError(.badInput, "the scale has shape \(scale.shape); it must be a scalar or a vector") }
            if let zero, zero.shape != scale.shape,
               !(zero.shape.concrete.flatMap { z in scale.shape.concrete.map { Reference.zeroPointFits(z, scale: $0) } } ?? false) {
                throw GraftError(.badInput, "the zero point has shape \(zero.shape), the scale \(scale.shape); they must match")
            }
            if quantize {
                guard x.dtype == .float32 else { throw GraftError(.badInput, "the input is \(x.dtype); only float32 is quantized") }
                guard Reference.quantizedRange(zero?.dtype ?? .uint8) != nil else {
                    throw GraftError(.badInput, "the zero point is \(zero!.dtype); quantizing to int8 and uint8 is supported")
                }
            } else {
                guard [.int8, .uint8, .int32].contains(x.dtype) else {
                    throw GraftError(.badInput, "the input is \(x.dtype); int8, uint8 and int32 are supported")
                }
                if let zero, zero.dtype != x.dtype { throw GraftError(.badInput, "the zero point is \(zero.dtype), the input \(x.dtype); they must match") }
            }
            if scale.shape.rank == 1, let count = scale.shape.dims[0].value, count != 1 {
                let a = try Reference.axis(axis, rank: x.shape.rank, op: name)
                if let size = x.shape.dims[a].value, size != count {
                    throw GraftError(.badInput, "\(count) scales for axis \(axis) of \(x.shape), which has \(size)")
                }
            }
            return [ValueFact(dtype: quantize ? zero?.dtype ?? .uint8 : .float32, shape: x.shape)]
        }
    }

    /// Broadcasts two dimension lists, NumPy style; a symbol meets a number other than 1 as
    /// that number.
    static func broadcastDims(_ a: [Dim], _ b: [Dim]) throws -> [Dim] {
        let rank = max(a.count, b.count)
        return try (0..<rank).map { i in
            let x = i < rank - a.count ? Dim.value(1) : a[i - (rank - a.count)]
            let y = i < rank - b.count ? Dim.value(1) : b[i - (rank - b.count)]
            if x == y || y == .value(1) { return x }
            if x == .value(1) { return y }
            if x.value == nil { return y }
            if y.value == nil { return x }
            throw GraftError(.badInput, "shapes \(Shape(a)) and \(Shape(b)) do not broadcast")
        }
    }

    /// The fact of a broadcast element-wise op, computing small integer results (shape math).
    static func broadcast(_ a: ValueFact, _ b: ValueFact, _ op: Op) throws -> ValueFact {
        let dims = try broadcastDims(a.shape.dims, b.shape.dims)
        var elements: [Dim]?
        if dims.count <= 1, let x = a.integers, let y = b.integers, !a.dtype.isFloatingPoint,
           x.count == 1 || y.count == 1 || x.count == y.count {
            let count = max(x.count, y.count)
            let binary: BinaryOperator = op == .sub ? .sub : op == .mul ? .mul : op == .div ? .div : .add
            elements = (0..<count).map { i in
                .value(Int(binary.apply(Int64(x[x.count == 1 ? 0 : i]), Int64(y[y.count == 1 ? 0 : i]))))
            }
        }
        return ValueFact(dtype: a.dtype, shape: Shape(dims), elements: elements)
    }
}
