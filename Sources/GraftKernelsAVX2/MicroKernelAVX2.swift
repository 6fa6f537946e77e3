/// The register-blocked core of every matrix product on AVX2 + FMA: a 6×16 block of C from a 6-row
/// panel of A and a 16-column strip of B, both packed k-major, in 12 ymm accumulators.
///
/// This module is compiled for haswell only; GraftRuntime calls it when the processor has AVX2 + FMA.
public enum MicroKernelAVX2 {
    /// Columns per strip of B.
    public static let columns = 16

    /// `C[0..<6, 0..<16] (+)= A·B` over `k` steps, then the epilogue: with `accumulate` the
    /// product is added to C (a later k-block), else `bias[row]` is added; then `residual` (same
    /// layout as C) and ReLU. `ldc` is C's row stride; `rowsValid`/`columnsValid` clip edge blocks.
    @inline(never)
    public static func run(_ k: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>, _ ldc: Int,
                           rowsValid: Int, columnsValid: Int, accumulate: Bool, bias: UnsafePointer<Float>?,
                           residual: UnsafePointer<Float>?, relu: Bool) {
        typealias V = SIMD8<Float>
        var c00 = V(), c01 = V()
        var c10 = V(), c11 = V()
        var c20 = V(), c21 = V()
        var c30 = V(), c31 = V()
        var c40 = V(), c41 = V()
        var c50 = V(), c51 = V()
        var ap = a, bp = UnsafeRawPointer(b)
        for _ in 0..<k {
            let b0 = bp.loadUnaligned(as: V.self)
            let b1 = (bp + 32).loadUnaligned(as: V.self)
            var av = V(repeating: ap[0]); c00.addProduct(av, b0); c01.addProduct(av, b1)
            av = V(repeating: ap[1]); c10.addProduct(av, b0); c11.addProduct(av, b1)
            av = V(repeating: ap[2]); c20.addProduct(av, b0); c21.addProduct(av, b1)
            av = V(repeating: ap[3]); c30.addProduct(av, b0); c31.addProduct(av, b1)
            av = V(repeating: ap[4]); c40.addProduct(av, b0); c41.addProduct(av, b1)
            av = V(repeating: ap[5]); c50.addProduct(av, b0); c51.addProduct(av, b1)
            ap += 6
            bp += 64
        }
        @inline(__always) func finish(_ r: Int, _ x: V, _ y: V, into p: UnsafeMutablePointer<Float>, _ res: UnsafePointer<Float>?) {
            let lo = UnsafeMutableRawPointer(p), hi = UnsafeMutableRawPointer(p + 8)
            var u = x, v = y
            if accumulate {
                u += lo.loadUnaligned(as: V.self)
                v += hi.loadUnaligned(as: V.self)
            } else if let bias {
                u += V(repeating: bias[r])
                v += V(repeating: bias[r])
            }
            if let res {
                u += UnsafeRawPointer(res).loadUnaligned(as: V.self)
                v += UnsafeRawPointer(res + 8).loadUnaligned(as: V.self)
            }
            if relu {
                u.replace(with: 0, where: u .< 0)
                v.replace(with: 0, where: v .< 0)
            }
            lo.storeBytes(of: u, as: V.self)
            hi.storeBytes(of: v, as: V.self)
        }
        if rowsValid == 6 && columnsValid == 16 {
            finish(0, c00, c01, into: c, residual)
            finish(1, c10, c11, into: c + ldc, residual.map { $0 + ldc })
            finish(2, c20, c21, into: c + 2 * ldc, residual.map { $0 + 2 * ldc })
            finish(3, c30, c31, into: c + 3 * ldc, residual.map { $0 + 3 * ldc })
            finish(4, c40, c41, into: c + 4 * ldc, residual.map { $0 + 4 * ldc })
            finish(5, c50, c51, into: c + 5 * ldc, residual.map { $0 + 5 * ldc })
            return
        }
        // Edge block: finish into a full-size spill block, then copy the valid part out.
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 6 * 16) { spill in
            let s = spill.baseAddress!
            s.initialize(repeating: 0, count: spill.count)
            for r in 0..<rowsValid {
                for j in 0..<columnsValid { s[r * 16 + j] = accumulate ? c[r * ldc + j] : 0 }
                for j in 0..<columnsValid { s[r * 16 + j] += residual.map { $0[r * ldc + j] } ?? 0 }
            }
            // The residual was folded into the spill above; finish without it.
            let rows = [(c00, c01), (c10, c11), (c20, c21), (c30, c31), (c40, c41), (c50, c51)]
            for r in 0..<rowsValid {
                let p = s + r * 16
                var u = rows[r].0 + UnsafeRawPointer(p).loadUnaligned(as: V.self)
                var v = rows[r].1 + UnsafeRawPointer(p + 8).loadUnaligned(as: V.self)
                if !accumulate, let bias {
                    u += V(repeating: bias[r])
                    v += V(repeating: bias[r])
                }
                if relu {
                    u.replace(with: 0, where: u .< 0)
                    v.replace(with: 0, where: v .< 0)
                }
                UnsafeMutableRawPointer(p).storeBytes(of: u, as: V.self)
                UnsafeMutableRawPointer(p + 8).storeBytes(of: v, as: V.self)
                (c + r * ldc).update(from: p, count: columnsValid)
            }
        }
    }
}
