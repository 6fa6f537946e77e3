import CKernels
import Foundation

/// The micro-kernels every convolution runs: AVX-512 (blocks of 6 pixels × 64 output channels)
/// where the processor has it, AVX2 + FMA (6 × 16) otherwise. `GRAFT_KERNELS=avx2` forces the AVX2 one.
public enum MicroKernel: String, CaseIterable, Sendable {
    case avx2
    case avx512

    /// The kernel set in use; tests switch it to check both.
    nonisolated(unsafe) public static var active: MicroKernel = best

    /// The widest kernel set this processor runs (read from /proc/cpuinfo's flags).
    public static let best: MicroKernel = {
        if let forced = ProcessInfo.processInfo.environment["GRAFT_KERNELS"].flatMap(MicroKernel.init(rawValue:)) {
            return forced == .avx512 && !supportsAVX512 ? .avx2 : forced
        }
        return supportsAVX512 ? .avx512 : .avx2
    }()

    /// Whether the processor has every extension the AVX-512 kernels are compiled for (their
    /// `target` attribute in CKernels).
    public static let supportsAVX512: Bool = ["avx512f", "avx512bw", "avx512dq", "avx512vl", "fma"].allSatisfy { cpuFlags.contains($0) }

    /// Whether the processor also has AVX512_BF16, which the bfloat16 convolution's kernels
    /// (`BF16Conv`) are compiled for besides the AVX-512 set.
    /// `GRAFT_KERNELS=avx2` turns it off too, as on a processor without AVX-512.
    public static let supportsBF16: Bool = supportsAVX512 && cpuFlags.contains("avx512_bf16") && best == .avx512

    /// Whether the processor also has AVX512_VNNI, which the int8 convolution's kernels
    /// (`Int8Conv`) are compiled for besides the AVX-512 set; `GRAFT_KERNELS=avx2` turns it off.
    public static let supportsVNNI: Bool = supportsAVX512 && cpuFlags.contains("avx512_vnni") && best == .avx512

    /// The flags /proc/cpuinfo reports (none where it cannot be read).
    private static let cpuFlags: Set<Substring> = {
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let flags = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return [] }
        return Set(flags.split(separator: " "))
    }()

    /// Output channels per strip of the channels-last kernel (`runRows`).
    var rowColumns: Int { self == .avx512 ? GRAFT_AVX512_ROW_COLUMNS : GRAFT_AVX2_ROW_COLUMNS }

    /// Output pixels per panel of the channels-last kernel.
    var rowCount: Int { self == .avx512 ? GRAFT_AVX512_ROW_COUNT : GRAFT_AVX2_ROW_COUNT }

    /// The channels-last block: A's rows gathered from `rows` (see `graft_avx512_rows` in CKernels);
    /// `columnsValid` below the strip's width goes through a whole tile in scratch. `ahead` and
    /// `aheadStep` are the line the kernel fetches into L2 at each k-step (none: the weights).
    @inline(__always)
    func runRows(segments: Int, length: Int, _ offsets: UnsafePointer<Int>, _ rows: UnsafePointer<UnsafePointer<Float>>,
                 _ b: UnsafePointer<Float>, _ out: UnsafePointer<UnsafeMutablePointer<Float>>, column: Int, rowsValid: Int, columnsValid: Int,
                 accumulate: Bool, bias: UnsafePointer<Float>?, residual: UnsafePointer<UnsafePointer<Float>>?, relu: Bool,
                 ahead: UnsafeRawPointer? = nil, aheadStep: Int = 0) {
        guard columnsValid == rowColumns else {
            runRowsClipped(segments: segments, length: length, offsets, rows, b, out, column: column, rowsValid: rowsValid,
                           columnsValid: columnsValid, accumulate: accumulate, bias: bias, residual: residual, relu: relu,
                           ahead: ahead, aheadStep: aheadStep)
            return
        }
        let ahead = ahead ?? UnsafeRawPointer(b)
        switch self {
        case .avx512:
            graft_avx512_rows(segments, length, offsets, rows, b, out, column, rowsValid, accumulate, bias, residual, relu, ahead, aheadStep)
        case .avx2:
            graft_avx2_rows(segments, length, offsets, rows, b, out, column, rowsValid, accumulate, bias, residual, relu, ahead, aheadStep)
        }
    }

    /// Winograd's input transform `Bᵀ d B` of the 4×4 pixels from `corner` (pixels `pixel`
    /// floats apart, rows `rowPitch`), `channels` a multiple of 16; plane ξ at `out + ξ·planeStride`.
    @inline(__always)
    func winogradInput(_ corner: UnsafePointer<Float>, pixel: Int, rowPitch: Int, channels: Int,
                       into out: UnsafeMutablePointer<Float>, planeStride: Int) {
        switch self {
        case .avx512: graft_avx512_winograd_input(corner, pixel, rowPitch, channels, out, planeStride)
        case .avx2: graft_avx2_winograd_input(corner, pixel, rowPitch, channels, out, planeStride)
        }
    }

    /// Winograd's output transform `Aᵀ m A` of one tile's 16 products (plane ξ at
    /// `m + ξ·planeStride`) into its `rows`×`columns` outputs that lie inside the image (from `y`,
    /// with the given pitches), plus bias, the residual and ReLU.
    @inline(__always)
    func winogradOutput(_ m: UnsafePointer<Float>, planeStride: Int, channels: Int, bias: UnsafePointer<Float>,
                        into y: UnsafeMutablePointer<Float>, pixel: Int, rowPitch: Int,
                        residual: UnsafePointer<Float>?, residualPixel: Int, residualRowPitch: Int,
                        rows: Int, columns: Int, relu: Bool) {
        switch self {
        case .avx512:
            graft_avx512_winograd_output(m, planeStride, channels, bias, y, pixel, rowPitch, residual, residualPixel, residualRowPitch,
                                         rows, columns, relu)
        case .avx2:
            graft_avx2_winograd_output(m, planeStride, channels, bias, y, pixel, rowPitch, residual, residualPixel, residualRowPitch,
                                       rows, columns, relu)
        }
    }

    /// The grouped kernel's shape for groups of `inPerGroup` inputs and `outPerGroup` outputs:
    /// output pixels per call and output channels per unit of packed weights; nil where it has
    /// no variant for them (see `graft_avx512_grouped` in CKernels).
    func groupedShape(inPerGroup: Int, outPerGroup: Int) -> (rows: Int, unit: Int)? {
        let (rows, unit) = switch self {
        case .avx512: (graft_avx512_grouped_rows(inPerGroup, outPerGroup), graft_avx512_grouped_unit(inPerGroup, outPerGroup))
        case .avx2: (graft_avx2_grouped_rows(inPerGroup, outPerGroup), graft_avx2_grouped_unit(inPerGroup, outPerGroup))
        }
        return rows > 0 && unit > 0 ? (rows, unit) : nil
    }

    /// `units` units of a grouped convolution's output channels from `column`, for the kernel's
    /// rows of pixels (every row computed: unused ones point at scratch): each pixel's taps at
    /// `rows[i] + offsets[t]`, then bias, the residual and ReLU (see `graft_avx512_grouped`).
    @inline(__always)
    func runGrouped(inPerGroup: Int, outPerGroup: Int, taps: Int, _ offsets: UnsafePointer<Int>, _ rows: UnsafePointer<UnsafePointer<Float>>,
                    _ b: UnsafePointer<Float>, _ out: UnsafePointer<UnsafeMutablePointer<Float>>, column: Int, units: Int,
                    bias: UnsafePointer<Float>?, residual: UnsafePointer<UnsafePointer<Float>>?, relu: Bool) {
        switch self {
        case .avx512:
            graft_avx512_grouped(inPerGroup, outPerGroup, taps, offsets, rows, b, out, column, units, bias, residual, relu)
        case .avx2:
            graft_avx2_grouped(inPerGroup, outPerGroup, taps, offsets, rows, b, out, column, units, bias, residual, relu)
        }
    }

    /// One row of max pooling over channels-last pixels (see `graft_avx512_max_pool_row` in
    /// CKernels): output pixel x from the window's columns `x·stride − pad + t·dilation` inside
    /// `0..<inputWidth` of each of `rows` (pointers to their pixel 0); a NaN propagates.
    @inline(__always)
    func maxPoolRow(_ out: UnsafeMutablePointer<Float>, pixel: Int, width outWidth: Int, rows: UnsafePointer<UnsafePointer<Float>>,
                    rowCount: Int, channels: Int, inputPixel: Int, inputWidth: Int, window: Int, stride: Int, dilation: Int, pad: Int) {
        switch self {
        case .avx512:
            graft_avx512_max_pool_row(out, pixel, outWidth, rows, rowCount, channels, inputPixel, inputWidth, window, stride, dilation, pad)
        case .avx2:
            graft_avx2_max_pool_row(out, pixel, outWidth, rows, rowCount, channels, inputPixel, inputWidth, window, stride, dilation, pad)
        }
    }

    /// The last strip of a channel count that is not a multiple of the strip: the block is
    /// computed whole into scratch rows (with what C holds, the residual and the bias copied in,
    /// zeros beyond) and its valid columns copied out.
    @inline(never)
    private func runRowsClipped(segments: Int, length: Int, _ offsets: UnsafePointer<Int>, _ rows: UnsafePointer<UnsafePointer<Float>>,
                                _ b: UnsafePointer<Float>, _ out: UnsafePointer<UnsafeMutablePointer<Float>>, column: Int, rowsValid: Int,
                                columnsValid: Int, accumulate: Bool, bias: UnsafePointer<Float>?,
                                residual: UnsafePointer<UnsafePointer<Float>>?, relu: Bool, ahead: UnsafeRawPointer?, aheadStep: Int) {
        let (nr, mr) = (rowColumns, rowCount)
        withUnsafeTemporaryAllocation(of: Float.self, capacity: (2 * mr + 1) * nr) { buffer in
            let tile = buffer.baseAddress!, added = tile + mr * nr, biasRow = added + mr * nr
            buffer.initialize(repeating: 0)
            withUnsafeTemporaryAllocation(of: UnsafeMutablePointer<Float>.self, capacity: mr) { outs in
                withUnsafeTemporaryAllocation(of: UnsafePointer<Float>.self, capacity: mr) { adds in
                    for r in 0..<mr {
                        outs[r] = tile + r * nr
                        adds[r] = UnsafePointer(added + r * nr)
                        guard r < rowsValid else { continue }
                        if accumulate { (tile + r * nr).update(from: out[r] + column, count: columnsValid) }
                        if let residual { (added + r * nr).update(from: residual[r] + column, count: columnsValid) }
                    }
                    if let bias { biasRow.update(from: bias, count: columnsValid) }
                    let o = UnsafePointer(outs.baseAddress!), a = UnsafePointer(adds.baseAddress!)
                    runRows(segments: segments, length: length, offsets, rows, b, o, column: 0, rowsValid: rowsValid, columnsValid: nr,
                            accumulate: accumulate, bias: bias == nil ? nil : UnsafePointer(biasRow), residual: residual == nil ? nil : a, relu: relu,
                            ahead: ahead, aheadStep: aheadStep)
                    for r in 0..<rowsValid { (out[r] + column).update(from: tile + r * nr, count: columnsValid) }
                }
            }
        }
    }
}

/// What a loop of `runRows` calls fetches into L2 while it multiplies: `lines` cache lines from
/// `base` (the next block of weights, or the next tile's pixels), a slice per call, one line
/// every few k-steps inside the call, so the fetches never queue up in a burst.
struct FetchAhead {
    let base: UnsafeRawPointer
    let linesPerCall: Int

    init(_ base: UnsafeRawPointer, lines: Int, calls: Int) {
        self.base = base
        linesPerCall = (max(0, lines) + calls - 1) / calls
    }

    /// Where call `call` starts fetching.
    func start(_ call: Int) -> UnsafeRawPointer { base + call * linesPerCall * 64 }

    /// Bytes from one call's first line to the next call's.
    var perCall: Int { linesPerCall * 64 }

    /// Bytes between the lines fetched at consecutive k-steps of a call of `steps` steps (0: the
    /// call touches one line again and again, which is free).
    func step(_ steps: Int) -> Int { linesPerCall == 0 ? 0 : (linesPerCall * 64 + steps - 1) / steps }
}
