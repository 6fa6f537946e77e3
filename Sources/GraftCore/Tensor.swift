import Foundation

/// The bytes behind a tensor: owned heap memory, or a slice of a file mapped into memory that
/// `owner` keeps alive.
public final class TensorStorage: @unchecked Sendable {
    public let bytes: UnsafeMutableRawPointer
    public let byteCount: Int
    /// Keeps borrowed memory (a mapped file) alive; nil when the storage owns `bytes`.
    private let owner: AnyObject?

    /// Heap memory, 64-byte aligned for SIMD kernels, zero-filled unless the caller will write
    /// every byte itself.
    public init(byteCount: Int, zeroed: Bool = true) {
        self.byteCount = byteCount
        self.bytes = UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, 1), alignment: 64)
        if zeroed { self.bytes.initializeMemory(as: UInt8.self, repeating: 0, count: max(byteCount, 1)) }
        self.owner = nil
    }

    /// Memory that belongs to `owner`, valid as long as `owner` lives; written only after a copy.
    public init(borrowing bytes: UnsafeMutableRawPointer, byteCount: Int, owner: AnyObject) {
        self.bytes = bytes
        self.byteCount = byteCount
        self.owner = owner
    }

    public var isBorrowed: Bool { owner != nil }

    /// For bytes of a memory-mapped file: tells the kernel their pages need not stay in memory
    /// (they are read from the file again if touched), so that weights copied elsewhere — folded,
    /// packed — are not held twice. Does nothing for any other memory.
    public func evictMappedPages() {
        guard owner is MappedFile, byteCount > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (Int(bitPattern: bytes) + page - 1) / page * page
        let end = (Int(bitPattern: bytes) + byteCount) / page * page
        guard end > start, let first = UnsafeMutableRawPointer(bitPattern: start) else { return }
        _ = madvise(first, end - start, MADV_DONTNEED)
    }

    deinit {
        if owner == nil { bytes.deallocate() }
    }
}

/// A dense, row-major tensor with value semantics: copies share storage until one is written.
public struct Tensor: @unchecked Sendable, CustomStringConvertible {
    public private(set) var dtype: DType
    public private(set) var shape: [Int]
    private var storage: TensorStorage

    /// A zero-filled tensor.
    public init(zeros shape: [Int], dtype: DType = .float32) {
        self.dtype = dtype
        self.shape = shape
        self.storage = TensorStorage(byteCount: shape.elementCount * dtype.byteSize)
    }

    /// A tensor whose elements are not initialized: for kernels that write every element.
    public init(uninitialized shape: [Int], dtype: DType = .float32) {
        self.dtype = dtype
        self.shape = shape
        self.storage = TensorStorage(byteCount: shape.elementCount * dtype.byteSize, zeroed: false)
    }

    /// A tensor over existing storage (for example a memory-mapped file region).
    public init(dtype: DType, shape: [Int], storage: TensorStorage) {
        precondition(storage.byteCount == shape.elementCount * dtype.byteSize,
                     "storage of \(storage.byteCount) bytes does not fit \(dtype) \(shape)")
        self.dtype = dtype
        self.shape = shape
        self.storage = storage
    }

    public init(shape: [Int], floats: [Float]) {
        precondition(floats.count == shape.elementCount, "\(floats.count) values for shape \(shape)")
        self.init(zeros: shape, dtype: .float32)
        floats.withUnsafeBytes { storage.bytes.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    }

    public init(shape: [Int], int64s: [Int64]) {
        precondition(int64s.count == shape.elementCount, "\(int64s.count) values for shape \(shape)")
        self.init(zeros: shape, dtype: .int64)
        int64s.withUnsafeBytes { storage.bytes.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    }

    public init(scalar: Float) { self.init(shape: [], floats: [scalar]) }

    public var elementCount: Int { shape.elementCount }
    public var rank: Int { shape.count }
    public var byteCount: Int { storage.byteCount }
    public var isMemoryMapped: Bool { storage.isBorrowed }

    /// Lets the pages of a memory-mapped tensor leave memory (`TensorStorage.evictMappedPages`).
    public func evictMappedPages() { storage.evictMappedPages() }

    /// The same elements seen with another shape of the same element count.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        precondition(newShape.elementCount == elementCount, "cannot reshape \(shape) to \(newShape)")
        var copy = self
        copy.shape = newShape
        return copy
    }

    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: storage.bytes, count: storage.byteCount))
    }

    public mutating func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        if !isKnownUniquelyReferenced(&storage) || storage.isBorrowed {
            let copy = TensorStorage(byteCount: storage.byteCount, zeroed: false)
            copy.bytes.copyMemory(from: storage.bytes, byteCount: storage.byteCount)
            storage = copy
        }
        return try body(UnsafeMutableRawBufferPointer(start: storage.bytes, count: storage.byteCount))
    }

    public func withUnsafeBufferPointer<T, R>(as type: T.Type, _ body: (UnsafeBufferPointer<T>) throws -> R) rethrows -> R {
        precondition(MemoryLayout<T>.stride == dtype.byteSize, "\(dtype) tensor read as \(T.self)")
        return try body(UnsafeBufferPointer(start: storage.bytes.assumingMemoryBound(to: T.self), count: elementCount))
    }

    public mutating func withUnsafeMutableBufferPointer<T, R>(as type: T.Type, _ body: (UnsafeMutableBufferPointer<T>) throws -> R) rethrows -> R {
        precondition(MemoryLayout<T>.stride == dtype.byteSize, "\(dtype) tensor written as \(T.self)")
        let count = elementCount
        return try withUnsafeMutableBytes { raw in
            try body(UnsafeMutableBufferPointer(start: raw.baseAddress!.assumingMemoryBound(to: T.self), count: count))
        }
    }

    /// The elements as `Float`, converting from any numeric type.
    public var floats: [Float] {
        switch dtype {
        case .float32: return withUnsafeBufferPointer(as: Float.self) { Array($0) }
        case .float64: return withUnsafeBufferPointer(as: Double.self) { $0.map { Float($0) } }
        case .float16: return withUnsafeBufferPointer(as: UInt16.self) { $0.map { Float(Float16(bitPattern: $0)) } }
        default: return int64s.map { Float($0) }
        }
    }

    /// The elements as `Int64`, converting from any integer or bool type.
    public var int64s: [Int64] {
        switch dtype {
        case .int64: return withUnsafeBufferPointer(as: Int64.self) { Array($0) }
        case .int32: return withUnsafeBufferPointer(as: Int32.self) { $0.map { Int64($0) } }
        case .int8: return withUnsafeBufferPointer(as: Int8.self) { $0.map { Int64($0) } }
        case .uint8, .bool: return withUnsafeBufferPointer(as: UInt8.self) { $0.map { Int64($0) } }
        case .float32, .float64, .float16: return floats.map { Int64($0) }
        }
    }

    /// The tensor converted to `dtype` (a copy; the same tensor when it already has that type).
    public func converted(to target: DType) -> Tensor {
        if target == dtype { return self }
        var out = Tensor(zeros: shape, dtype: target)
        switch target {
        case .float32: let v = floats; out.withUnsafeMutableBufferPointer(as: Float.self) { _ = $0.initialize(from: v) }
        case .float64: let v = floats; out.withUnsafeMutableBufferPointer(as: Double.self) { p in for i in v.indices { p[i] = Double(v[i]) } }
        case .float16: let v = floats; out.withUnsafeMutableBufferPointer(as: UInt16.self) { p in for i in v.indices { p[i] = Float16(v[i]).bitPattern } }
        case .int64: let v = int64s; out.withUnsafeMutableBufferPointer(as: Int64.self) { _ = $0.initialize(from: v) }
        case .int32: let v = int64s; out.withUnsafeMutableBufferPointer(as: Int32.self) { p in for i in v.indices { p[i] = Int32(truncatingIfNeeded: v[i]) } }
        case .int8: let v = int64s; out.withUnsafeMutableBufferPointer(as: Int8.self) { p in for i in v.indices { p[i] = Int8(truncatingIfNeeded: v[i]) } }
        case .uint8: let v = int64s; out.withUnsafeMutableBufferPointer(as: UInt8.self) { p in for i in v.indices { p[i] = UInt8(truncatingIfNeeded: v[i]) } }
        case .bool: let v = int64s; out.withUnsafeMutableBufferPointer(as: UInt8.self) { p in for i in v.indices { p[i] = v[i] != 0 ? 1 : 0 } }
        }
        return out
    }

    public var description: String { "Tensor<\(dtype)>\(shape)" }
}

extension Tensor: Equatable {
    /// Same type, same shape, same bytes.
    public static func == (a: Tensor, b: Tensor) -> Bool {
        guard a.dtype == b.dtype, a.shape == b.shape else { return false }
        return a.withUnsafeBytes { x in b.withUnsafeBytes { y in memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0 } }
    }
}
