/// One dimension of a shape: a known size or a named symbol such as the batch size `N`.
public enum Dim: Hashable, Sendable, CustomStringConvertible {
    case value(Int)
    case symbol(String)

    /// The size, when it is known.
    public var value: Int? {
        if case .value(let v) = self { return v }
        return nil
    }

    public var description: String {
        switch self {
        case .value(let v): return String(v)
        case .symbol(let s): return s
        }
    }
}

/// A tensor shape whose dimensions may be symbolic (a dynamic batch dimension).
public struct Shape: Hashable, Sendable, CustomStringConvertible, ExpressibleByArrayLiteral {
    public var dims: [Dim]

    public init(_ dims: [Dim]) { self.dims = dims }
    public init(_ sizes: [Int]) { self.dims = sizes.map(Dim.value) }
    public init(arrayLiteral elements: Int...) { self.init(elements) }

    public var rank: Int { dims.count }

    /// The sizes, when every dimension is known.
    public var concrete: [Int]? {
        var sizes: [Int] = []
        sizes.reserveCapacity(dims.count)
        for d in dims {
            guard let v = d.value else { return nil }
            sizes.append(v)
        }
        return sizes
    }

    /// The shape with every symbol replaced by its size in `bindings`.
    public func binding(_ bindings: [String: Int]) -> Shape {
        Shape(dims.map { d in
            if case .symbol(let s) = d, let v = bindings[s] { return .value(v) }
            return d
        })
    }

    /// `[N, 3, 224, 224]`.
    public var description: String { "[" + dims.map(\.description).joined(separator: ", ") + "]" }
}

extension Array where Element == Int {
    /// The number of elements of a tensor with these sizes.
    public var elementCount: Int { reduce(1, *) }

    /// The product of the sizes, or nil when it overflows `Int`: for sizes read from a file.
    public var checkedElementCount: Int? {
        var count = 1
        for size in self {
            let (next, overflow) = count.multipliedReportingOverflow(by: size)
            if overflow { return nil }
            count = next
        }
        return count
    }
}
