import GraftCore

/// A 3×3 stride-1 convolution by Winograd's minimal filtering F(2×2, 3×3): 16 multiplications
/// per 2×2 output tile and channel pair instead of 36.
///
/// With `d` a 4×4 input patch and `g` a 3×3 filter, each 2×2 output tile is
/// `Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A`. The filter transform `U = G g Gᵀ` is done once at load;
/// a run transforms the input patches (`V = Bᵀ d B`), multiplies, for each of the 16 positions
/// ξ of the 4×4 transform, `M_ξ = U_ξ · V_ξ` (`[Cout, Cin] × [Cin, tiles]`, the micro-kernel's
/// product), then transforms back, adding the bias and residual and applying ReLU.
final class WinogradConv {
    let cin, cout: Int
    let pads: [Int]
    /// `U_ξ` for the 16 positions ξ, each `[Cout, Cin]` packed for the micro-kernel.
    private let transformed: [PackedMatrix]
    private let bias: [Float]?

    /// Whether a convolution can run this way: 3×3, stride 1, no dilation, one group.
    static func applies(_ attributes: ConvAttributes, weight: Tensor) -> Bool {
        weight.rank == 4 && weight.shape[2] == 3 && weight.shape[3] == 3 && attributes.group == 1
            && attributes.window.strides == [1, 1] && attributes.window.dilations == [1, 1] && attributes.window.autoPad == .notSet
    }

    init(weight: Tensor, bias: Tensor?, attributes: ConvAttributes) {
        cout = weight.shape[0]
        cin = weight.shape[1]
        pads = attributes.window.pads
        let (cout, cin) = (self.cout, self.cin)
        // U = G g Gᵀ with G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]], per filter.
        var u = [Float](repeating: 0, count: 16 * cout * cin)
        weight.withUnsafeBufferPointer(as: Float.self) { w in
            for o in 0..<cout {
                for i in 0..<cin {
                    let g = w.baseAddress! + (o * cin + i) * 9
                    var gg = [Float](repeating: 0, count: 12)  // G g: 4×3
                    for c in 0..<3 {
                        let (g0, g1, g2) = (g[c], g[3 + c], g[6 + c])
                        gg[c] = g0
                        gg[3 + c] = 0.5 * (g0 + g1 + g2)
                        gg[6 + c] = 0.5 * (g0 - g1 + g2)
                        gg[9 + c] = g2
                    }
                    for r in 0..<4 {
                        let (a0, a1, a2) = (gg[r * 3], gg[r * 3 + 1], gg[r * 3 + 2])
                        let row = [a0, 0.5 * (a0 + a1 + a2), 0.5 * (a0 - a1 + a2), a2]
                        for c in 0..<4 { u[((r * 4 + c) * cout + o) * cin + i] = row[c] }
                    }
                }
            }
        }
        transformed = (0..<16).map { xi in
            PackedMatrix(rows: cout, depth: cin) { o, i in u[(xi * cout + o) * cin + i] }
        }
        self.bias = bias?.floats
    }

    /// `y = relu?(conv(x) + bias + residual?)` for NCHW `x` of `n` images of `h`×`w`.
    func run(_ x: UnsafePointer<Float>, n: Int, h: Int, w: Int, into y: UnsafeMutablePointer<Float>,
             residual: UnsafePointer<Float>?, relu: Bool, scratch: inout PackedConv.Scratch) {
        let oh = h + pads[0] + pads[2] - 2, ow = w + pads[1] + pads[3] - 2
        let th = (oh + 1) / 2, tw = (ow + 1) / 2
        let tiles = n * th * tw
        let nr = MicroKernel.active.columns
        let strips = (tiles + nr - 1) / nr
        let vCount = strips * nr * cin, mCount = cout * tiles
        scratch.reserve(16 * (vCount + mCount))
        let (cin, cout, pt, pl) = (self.cin, self.cout, pads[0], pads[1])
        scratch.floats.withUnsafeMutableBufferPointer { buffer in
            let v = buffer.baseAddress!, m = v + 16 * vCount
            // V_ξ = Bᵀ d B, Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]], written
            // straight into the packed strips: V_ξ[strip][c][lane].
            Parallel.forEach(strips) { s in
                for lane in 0..<nr {
                    let t = s * nr + lane
                    for c in 0..<cin {
                        let slot = (s * cin + c) * nr + lane
                        guard t < tiles else {
                            for xi in 0..<16 { v[xi * vCount + slot] = 0 }
                            continue
                        }
                        let b = t / (th * tw), ty = (t / tw) % th, tx = t % tw
                        let plane = x + (b * cin + c) * h * w
                        let y0 = 2 * ty - pt, x0 = 2 * tx - pl
                        func row(_ r: Int) -> SIMD4<Float> {
                            let iy = y0 + r
                            guard iy >= 0 && iy < h else { return SIMD4<Float>() }
                            let line = plane + iy * w
                            if x0 >= 0 && x0 + 3 < w { return UnsafeRawPointer(line + x0).loadUnaligned(as: SIMD4<Float>.self) }
                            var out = SIMD4<Float>()
                            for j in 0..<4 where x0 + j >= 0 && x0 + j < w { out[j] = line[x0 + j] }
                            return out
                        }
                        let (d0, d1, d2, d3) = (row(0), row(1), row(2), row(3))
                        // Bᵀ d: combine rows.
                        let r0 = d0 - d2, r1 = d1 + d2, r2 = d2 - d1, r3 = d1 - d3
                        // (Bᵀ d) B: combine the columns of each row.
                        @inline(__always) func put(_ i: Int, _ r: SIMD4<Float>) {
                            v[(i * 4 + 0) * vCount + slot] = r[0] - r[2]
                            v[(i * 4 + 1) * vCount + slot] = r[1] + r[2]
                            v[(i * 4 + 2) * vCount + slot] = r[2] - r[1]
                            v[(i * 4 + 3) * vCount + slot] = r[1] - r[3]
                        }
                        put(0, r0)
                        put(1, r1)
                        put(2, r2)
                        put(3, r3)
                    }
                }
            }
            // M_ξ = U_ξ · V_ξ.
            for xi in 0..<16 {
                transformed[xi].multiply(.strips(UnsafePointer(v + xi * vCount)), columns: tiles, into: m + xi * mCount,
                                         bias: nil, residual: nil, relu: false)
            }
            // Y = Aᵀ M A, Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]], plus bias, residual, ReLU.
            let bias = self.bias
            Parallel.forEach(cout) { o in
                let b0 = bias?[o] ?? 0
                for t in 0..<tiles {
                    let src = m + o * tiles + t
                    @inline(__always) func mrow(_ r: Int) -> SIMD4<Float> {
                        SIMD4(src[(r * 4) * mCount], src[(r * 4 + 1) * mCount], src[(r * 4 + 2) * mCount], src[(r * 4 + 3) * mCount])
                    }
                    let (m0, m1, m2, m3) = (mrow(0), mrow(1), mrow(2), mrow(3))
                    // Aᵀ M (2×4), then (Aᵀ M) A (2×2).
                    let top = m0 + m1 + m2, bottom = m1 - m2 - m3
                    let out = SIMD4<Float>(top[0] + top[1] + top[2], top[1] - top[2] - top[3],
                                           bottom[0] + bottom[1] + bottom[2], bottom[1] - bottom[2] - bottom[3])
                    let b = t / (th * tw), ty = (t / tw) % th, tx = t % tw
                    for i in 0..<2 {
                        let oy = 2 * ty + i
                        guard oy < oh else { continue }
                        for j in 0..<2 {
                            let ox = 2 * tx + j
                            guard ox < ow else { continue }
                            let index = ((b * cout + o) * oh + oy) * ow + ox
                            var value = out[i * 2 + j] + b0
                            if let residual { value += residual[index] }
                            y[index] = relu ? max(value, 0) : value
                        }
                    }
                }
            }
        }
    }
}
