/// The bound on what a model may make Graft allocate. Sizes that come from a file's data (a
/// `ConstantOfShape` shape, `Pad` amounts, a window's padding, a declared input shape) are
/// checked against it before any memory is taken, so a malicious file is refused with an error
/// instead of exhausting memory.
extension Reference {
    /// The most bytes one tensor may take: 4 GiB, far above any ResNet activation at batch 256
    /// (822 MB for ResNet-50 at 224×224).
    public static let maximumTensorBytes = 1 << 32

    /// The most elements one tensor may hold, so that every element index fits in 32 bits.
    public static let maximumTensorElements = Int(Int32.max)

    /// The element count of `shape`, checked to be non-negative and, for `dtype`, within
    /// `maximumTensorBytes`.
    ///
    /// - Throws: `GraftError` naming `what` (the output, the declared shape) when it is too large.
    public static func checkedElementCount(_ shape: [Int], _ dtype: DType, _ what: String = "the output", op: String? = nil) throws -> Int {
        try checkSize(shape.map(Dim.value), dtype, what, op: op)
        return shape.contains(0) ? 0 : shape.reduce(1, *)
    }

    /// Checks the known dimensions of `dims` (symbols counted as 1): none negative, and their
    /// product within `maximumTensorElements` and, for `dtype`, `maximumTensorBytes`.
    public static func checkSize(_ dims: [Dim], _ dtype: DType, _ what: String = "the output", op: String? = nil) throws {
        var elements = 1
        for d in dims {
            guard let v = d.value else { continue }
            guard v >= 0 else {
                throw GraftError(.badInput, "\(what) has a negative size in \(Shape(dims))", op: op)
            }
            if v == 0 { return }
            let (product, overflow) = elements.multipliedReportingOverflow(by: v)
            elements = overflow ? Int.max : product
        }
        let (bytes, overflow) = elements.multipliedReportingOverflow(by: dtype.byteSize)
        guard !overflow, bytes <= maximumTensorBytes else {
            throw GraftError(.badInput, "\(what) \(Shape(dims)) of \(dtype) is larger than Graft's limit of 4 GiB per tensor", op: op)
        }
        guard elements <= maximumTensorElements else {
            throw GraftError(.badInput, "\(what) \(Shape(dims)) has more elements than Graft's limit of 2³¹ − 1 per tensor", op: op)
        }
    }

    /// The product of `values`, or nil when it overflows.
    static func product(_ values: [Int]) -> Int? { values.checkedElementCount }

    /// The elements of an integer tensor that holds sizes, axes or indices, as `Int`s.
    ///
    /// - Throws: `GraftError` when the tensor holds floating-point values.
    static func integers(_ t: Tensor, _ what: String, op: String) throws -> [Int] {
        guard !t.dtype.isFloatingPoint else {
            throw GraftError(.badInput, "\(what) must be integers, got \(t.dtype)", op: op)
        }
        return t.int64s.map { Int($0) }
    }
}

extension Window {
    /// Checks a pooling window against its input (H, W): each pad (as given, or as `autoPad`
    /// works it out) smaller than the kernel, as ONNX Runtime requires, and no larger than the
    /// input, so padding cannot stretch a window over an input it barely covers (every tap of
    /// a window costs time and memory, in padding or not).
    ///
    /// - Throws: `GraftError` naming the pads, kernel and input.
    public func validatePooling(input: [Int]) throws {
        try validate()
        let applied = resolve(input: input).pads
        for axis in 0..<2 {
            for pad in [applied[axis], applied[axis + 2]] where pad >= kernel[axis] || pad > input[axis] {
                throw GraftError(.badInput, "pads \(applied) must be smaller than the kernel \(kernel) and no larger than the input \(input)")
            }
        }
    }

    /// Checks the geometry before any size is computed from it: 2-D, kernel, strides and
    /// dilations at least 1, pads not negative, every value below 2³¹ (so output sizes cannot
    /// overflow).
    ///
    /// - Throws: `GraftError` saying which part is out of range.
    public func validate() throws {
        guard kernel.count == 2, strides.count == 2, pads.count == 4, dilations.count == 2 else {
            throw GraftError(.badInput, "kernel \(kernel), strides \(strides), pads \(pads), dilations \(dilations) are not 2-D; only 2-D windows are supported")
        }
        let limit = Int(Int32.max)
        guard (kernel + strides + dilations).allSatisfy({ $0 >= 1 && $0 <= limit }), pads.allSatisfy({ $0 >= 0 && $0 <= limit }) else {
            throw GraftError(.badInput, "kernel \(kernel), strides \(strides), dilations \(dilations) must be in 1...\(limit) and pads \(pads) in 0...\(limit)")
        }
    }
}
