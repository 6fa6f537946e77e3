import GraftCore

extension TensorReference {
    /// The tensor this view describes, read from its storage's bytes: borrowed from the mapped
    /// file when it is contiguous, aligned, little-endian float32, copied (and converted to
    /// `storage.type.dtype`) otherwise.
    /// - Parameters:
    ///   - bytes: the storage's bytes in `file` (a zip entry, a legacy record), already checked to
    ///     hold the storage's declared elements.
    /// - Throws: `Unpickler.Refusal` when the view reaches past the storage or is malformed.
    func tensor(storageBytes bytes: Range<Int>, in file: MappedFile, bigEndian: Bool) throws -> Tensor {
        guard offset >= 0, shape.count == strides.count, shape.allSatisfy({ $0 >= 0 }), strides.allSatisfy({ $0 >= 0 }) else {
            throw Unpickler.Refusal("a view with offset \(offset), size \(shape) and stride \(strides) is not read")
        }
        guard let count = shape.checkedElementCount else {
            throw Unpickler.Refusal("a view of size \(shape) has more elements than memory")
        }
        if count > 0 {
            guard let reach = Self.lastElement(offset: offset, shape: shape, strides: strides), reach < storage.count else {
                throw Unpickler.Refusal("its view (offset \(offset), size \(shape), stride \(strides)) reaches past "
                    + "the end of its storage of \(storage.count) elements")
            }
            guard count <= storage.count else {
                throw Unpickler.Refusal("a view of \(count) elements repeats those of its storage of \(storage.count)")
            }
        } else if offset > storage.count {
            throw Unpickler.Refusal("an empty view at offset \(offset) lies past the end of its storage of \(storage.count) elements")
        }
        let elementSize = storage.type.elementSize
        let first = bytes.lowerBound + (storage.viewOffset + offset) * elementSize
        if storage.type == .float, !bigEndian, isContiguous, Int(bitPattern: file.bytes + first) % 64 == 0 {
            let borrowed = TensorStorage(borrowing: file.bytes + first, byteCount: count * 4, owner: file)
            return Tensor(dtype: .float32, shape: shape, storage: borrowed)
        }
        var tensor = Tensor(uninitialized: shape, dtype: storage.type.dtype)
        guard count > 0 else { return tensor }
        let base = UnsafeRawPointer(file.bytes + first)
        let outSize = storage.type.dtype.byteSize
        // Rows along the last dimension, converted a row at a time; an odometer over the other
        // dimensions finds each row's start in the storage. A contiguous view is one row.
        let rowLength = isContiguous ? count : shape.last ?? 1
        let rowStride = isContiguous ? 1 : strides.last ?? 1
        let outer = Array(shape.dropLast()), outerStrides = Array(strides.dropLast())
        tensor.withUnsafeMutableBytes { out in
            var index = [Int](repeating: 0, count: outer.count)
            var source = 0
            for row in 0..<(count / rowLength) {
                storage.type.convert(base + source * elementSize, stride: rowStride, count: rowLength, bigEndian: bigEndian,
                                     to: out.baseAddress! + row * rowLength * outSize)
                var d = outer.count - 1
                while d >= 0 {
                    index[d] += 1
                    source += outerStrides[d]
                    if index[d] < outer[d] { break }
                    source -= outerStrides[d] * outer[d]
                    index[d] = 0
                    d -= 1
                }
            }
        }
        return tensor
    }

    /// Whether the strides are the row-major ones (dimensions of size 1 may have any stride).
    var isContiguous: Bool {
        var expected = 1
        for (size, stride) in zip(shape, strides).reversed() where size != 1 {
            if stride != expected { return false }
            expected *= size
        }
        return true
    }

    /// `offset + Σ (size - 1)·stride`, or nil if that overflows.
    private static func lastElement(offset: Int, shape: [Int], strides: [Int]) -> Int? {
        var reach = offset
        for (size, stride) in zip(shape, strides) {
            let (step, overflow) = (size - 1).multipliedReportingOverflow(by: stride)
            let (next, overflow2) = reach.addingReportingOverflow(step)
            if overflow || overflow2 { return nil }
            reach = next
        }
        return reach
    }
}
