import Foundation
import GraftCore

/// Writes a pickle (protocol 2) opcode for opcode as Python's `pickle.Pickler` writes the same
/// objects, memo included: every object Python memoizes gets its `BINPUT`, and an object Python
/// pickles once and then refers to (a class, a shared string) is fetched again with `BINGET`.
struct PickleWriter {
    private(set) var bytes: [UInt8] = [0x80, 2]  // PROTO 2
    private var memoCount = 0
    /// The memo slot of each object pickled once and fetched after (`global torch FloatStorage`,
    /// `string cpu`).
    private var shared: [String: Int] = [:]

    /// A class or function: `GLOBAL module name`, fetched from the memo after its first use.
    mutating func global(_ module: String, _ name: String) {
        if fetch("global \(module) \(name)") { return }
        bytes.append(UInt8(ascii: "c"))
        bytes.append(contentsOf: Array("\(module)\n\(name)\n".utf8))
        memoize(as: "global \(module) \(name)")
    }

    /// A string object of its own (each key of a state_dict).
    mutating func string(_ value: String) {
        binUnicode(value)
        memoize()
    }

    /// One string object that the pickled data uses again and again (a constant in torch's code).
    mutating func sharedString(_ value: String) {
        if fetch("string \(value)") { return }
        binUnicode(value)
        memoize(as: "string \(value)")
    }

    /// An integer in the shortest opcode Python picks.
    mutating func int(_ value: Int) {
        switch value {
        case 0...0xFF:
            bytes += [UInt8(ascii: "K"), UInt8(value)]  // BININT1
        case 0...0xFFFF:
            bytes += [UInt8(ascii: "M"), UInt8(value & 0xFF), UInt8(value >> 8)]  // BININT2
        case Int(Int32.min)...Int(Int32.max):
            bytes.append(UInt8(ascii: "J"))  // BININT
            append32(UInt32(bitPattern: Int32(value)))
        default:
            // LONG1: the fewest little-endian two's-complement bytes that keep the sign.
            var encoded: [UInt8] = []
            var rest = value
            repeat {
                encoded.append(UInt8(truncatingIfNeeded: rest))
                rest >>= 8
            } while !(rest == 0 && encoded.last! < 0x80) && !(rest == -1 && encoded.last! >= 0x80)
            bytes += [0x8A, UInt8(encoded.count)] + encoded
        }
    }

    mutating func bool(_ value: Bool) {
        bytes.append(value ? 0x88 : 0x89)  // NEWTRUE, NEWFALSE
    }

    /// A tuple of `count` elements that `elements` pickles: `EMPTY_TUPLE`, `TUPLE1`–`TUPLE3`, or
    /// `MARK … TUPLE`, memoized unless empty.
    mutating func tuple(count: Int, _ elements: (inout PickleWriter) -> Void) {
        if count == 0 {
            bytes.append(UInt8(ascii: ")"))  // EMPTY_TUPLE
            return
        }
        if count > 3 { mark() }
        elements(&self)
        bytes.append(count > 3 ? UInt8(ascii: "t") : 0x84 + UInt8(count))  // TUPLE, TUPLE1-3
        memoize()
    }

    /// A tuple of integers (a size, a stride).
    mutating func tuple(_ values: [Int]) {
        tuple(count: values.count) { writer in
            for value in values { writer.int(value) }
        }
    }

    /// `REDUCE`: calls the callable below the arguments tuple on top; the result is memoized.
    mutating func reduce() {
        bytes.append(UInt8(ascii: "R"))
        memoize()
    }

    /// `BINPERSID`: the object on top is a persistent id the loader resolves (a tensor's storage).
    mutating func persistentID() {
        bytes.append(UInt8(ascii: "Q"))
    }

    mutating func mark() {
        bytes.append(UInt8(ascii: "("))
    }

    /// `SETITEM`, or `SETITEMS` for the pairs since the last mark.
    mutating func setItems(count: Int) {
        bytes.append(count == 1 ? UInt8(ascii: "s") : UInt8(ascii: "u"))
    }

    /// The pickle, ended with `STOP`.
    func finished() -> Data {
        Data(bytes + [UInt8(ascii: ".")])
    }

    private mutating func memoize(as sharedName: String? = nil) {
        if memoCount < 0x100 {
            bytes += [UInt8(ascii: "q"), UInt8(memoCount)]  // BINPUT
        } else {
            bytes.append(UInt8(ascii: "r"))  // LONG_BINPUT
            append32(UInt32(memoCount))
        }
        if let sharedName { shared[sharedName] = memoCount }
        memoCount += 1
    }

    /// Writes `BINGET` of the object pickled before under `sharedName`; false when there is none.
    private mutating func fetch(_ sharedName: String) -> Bool {
        guard let slot = shared[sharedName] else { return false }
        if slot < 0x100 {
            bytes += [UInt8(ascii: "h"), UInt8(slot)]  // BINGET
        } else {
            bytes.append(UInt8(ascii: "j"))  // LONG_BINGET
            append32(UInt32(slot))
        }
        return true
    }

    private mutating func binUnicode(_ value: String) {
        let utf8 = Array(value.utf8)
        bytes.append(UInt8(ascii: "X"))  // BINUNICODE
        append32(UInt32(utf8.count))
        bytes.append(contentsOf: utf8)
    }

    private mutating func append32(_ value: UInt32) {
        for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
    }
}

// MARK: - A state_dict as torch.save pickles it

extension PickleWriter {
    /// Python pickles dict items in batches of this many (`pickle._BATCHSIZE`).
    static let batchSize = 1000

    /// The `data.pkl` of `torch.save(state_dict)` in the zip format, byte for byte: an
    /// `OrderedDict` whose values are `torch._utils._rebuild_tensor_v2(storage, 0, size, stride,
    /// False, OrderedDict())`, each storage the persistent id
    /// `('storage', torch.<Type>Storage, '<index>', 'cpu', numel)` of record `data/<index>`.
    static func stateDict(_ tensors: [(key: String, dtype: DType, shape: [Int])]) -> Data {
        var writer = PickleWriter()
        writer.global("collections", "OrderedDict")
        writer.tuple(count: 0) { _ in }
        writer.reduce()
        var index = 0
        while index < tensors.count {
            let batch = tensors[index..<min(index + batchSize, tensors.count)]
            if batch.count > 1 { writer.mark() }
            for storageIndex in batch.indices {
                let tensor = tensors[storageIndex]
                writer.string(tensor.key)
                writer.rebuildTensor(storageIndex: storageIndex, dtype: tensor.dtype, shape: tensor.shape)
            }
            writer.setItems(count: batch.count)
            index += batch.count
        }
        return writer.finished()
    }

    /// torch's name for the storage class of each element type.
    static func storageType(_ dtype: DType) -> String {
        switch dtype {
        case .float32: return "FloatStorage"
        case .float64: return "DoubleStorage"
        case .float16: return "HalfStorage"
        case .int64: return "LongStorage"
        case .int32: return "IntStorage"
        case .int8: return "CharStorage"
        case .uint8: return "ByteStorage"
        case .bool: return "BoolStorage"
        }
    }

    private mutating func rebuildTensor(storageIndex: Int, dtype: DType, shape: [Int]) {
        global("torch._utils", "_rebuild_tensor_v2")
        tuple(count: 6) { writer in
            writer.tuple(count: 5) { id in
                id.sharedString("storage")
                id.global("torch", Self.storageType(dtype))
                id.string(String(storageIndex))
                id.sharedString("cpu")
                id.int(shape.reduce(1, *))
            }
            writer.persistentID()
            writer.int(0)  // storage offset
            writer.tuple(shape)
            writer.tuple(Self.contiguousStrides(shape))
            writer.bool(false)  // requires_grad
            writer.global("collections", "OrderedDict")  // backward hooks: OrderedDict()
            writer.tuple(count: 0) { _ in }
            writer.reduce()
        }
        reduce()
    }

    /// Row-major strides as torch computes them: a dimension of size 0 counts as 1.
    static func contiguousStrides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var step = 1
        for axis in shape.indices.reversed() {
            strides[axis] = step
            step *= max(shape[axis], 1)
        }
        return strides
    }
}
