/// The register-blocked core of every matrix product: a 6×16 block of C from a 6-row panel of A
/// and a 16-column strip of B, both packed k-major, in 12 AVX2 accumulators.
enum MicroKernel {
    static let rows = 6
    static let columns = 16

    /// What to do with the block once the product over this k-range is done.
    struct Store {
        /// Add to what C holds (a later k-block) instead of overwriting it.
        var accumulate: Bool
        /// Per-row bias, added when not accumulating.
        var bias: UnsafePointer<Float>?
        /// A tensor of C's layout added at the end (the residual of a ResNet block).
        var residual: UnsafePointer<Float>?
        var relu: Bool
    }

    /// `C[0..<6, 0..<16] (+)= A·B` over `k` steps, then bias, residual and ReLU as `store` says.
    /// `ldc` is C's row stride; `rowsValid`/`columnsValid` clip the edge blocks.
    @inline(__always)
    static func run(_ k: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                    _ c: UnsafeMutablePointer<Float>, _ ldc: Int, rowsValid: Int, columnsValid: Int, store: Store) {
        var c00 = SIMD8<Float>(), c01 = SIMD8<Float>()
        var c10 = SIMD8<Float>(), c11 = SIMD8<Float>()
        var c20 = SIMD8<Float>(), c21 = SIMD8<Float>()
        var c30 = SIMD8<Float>(), c31 = SIMD8<Float>()
        var c40 = SIMD8<Float>(), c41 = SIMD8<Float>()
        var c50 = SIMD8<Float>(), c51 = SIMD8<Float>()
        var ap = a, bp = UnsafeRawPointer(b)
        for _ in 0..<k {
            let b0 = bp.loadUnaligned(as: SIMD8<Float>.self)
            let b1 = (bp + 32).loadUnaligned(as: SIMD8<Float>.self)
            var av = SIMD8<Float>(repeating: ap[0]); c00.addProduct(av, b0); c01.addProduct(av, b1)
            av = SIMD8<Float>(repeating: ap[1]); c10.addProduct(av, b0); c11.addProduct(av, b1)
            av = SIMD8<Float>(repeating: ap[2]); c20.addProduct(av, b0); c21.addProduct(av, b1)
            av = SIMD8<Float>(repeating: ap[3]); c30.addProduct(av, b0); c31.addProduct(av, b1)
            av = SIMD8<Float>(repeating: ap[4]); c40.addProduct(av, b0); c41.addProduct(av, b1)
            av = SIMD8<Float>(repeating: ap[5]); c50.addProduct(av, b0); c51.addProduct(av, b1)
            ap += 6
            bp += 64
        }
        if rowsValid == 6 && columnsValid == 16 {
            storeRow(c, 0, ldc, c00, c01, store)
            storeRow(c, 1, ldc, c10, c11, store)
            storeRow(c, 2, ldc, c20, c21, store)
            storeRow(c, 3, ldc, c30, c31, store)
            storeRow(c, 4, ldc, c40, c41, store)
            storeRow(c, 5, ldc, c50, c51, store)
            return
        }
        // Edge block: spill to a small buffer, then store the valid part element by element.
        withUnsafeTemporaryAllocation(of: SIMD8<Float>.self, capacity: 12) { spill in
        spill[0] = c00; spill[1] = c01; spill[2] = c10; spill[3] = c11; spill[4] = c20; spill[5] = c21
        spill[6] = c30; spill[7] = c31; spill[8] = c40; spill[9] = c41; spill[10] = c50; spill[11] = c51
        for r in 0..<rowsValid {
            let row = c + r * ldc
            let bias = store.bias.map { $0[r] } ?? 0
            for j in 0..<columnsValid {
                let v = spill[2 * r + j / 8][j % 8]
                var out = store.accumulate ? row[j] + v : v + bias
                if let residual = store.residual { out += residual[r * ldc + j] }
                if store.relu { out = max(out, 0) }
                row[j] = out
            }
        }
        }
    }

    @inline(__always)
    private static func storeRow(_ c: UnsafeMutablePointer<Float>, _ r: Int, _ ldc: Int, _ x: SIMD8<Float>, _ y: SIMD8<Float>, _ store: Store) {
        let p = UnsafeMutableRawPointer(c + r * ldc), q = UnsafeMutableRawPointer(c + r * ldc + 8)
        var lo = x, hi = y
        if store.accumulate {
            lo += p.loadUnaligned(as: SIMD8<Float>.self)
            hi += q.loadUnaligned(as: SIMD8<Float>.self)
        } else if let bias = store.bias {
            let v = SIMD8<Float>(repeating: bias[r])
            lo += v
            hi += v
        }
        if let residual = store.residual {
            let s = UnsafeRawPointer(residual + r * ldc)
            lo += s.loadUnaligned(as: SIMD8<Float>.self)
            hi += (s + 32).loadUnaligned(as: SIMD8<Float>.self)
        }
        if store.relu {
            let zero = SIMD8<Float>()
            lo.replace(with: zero, where: lo .< zero)
            hi.replace(with: zero, where: hi .< zero)
        }
        p.storeBytes(of: lo, as: SIMD8<Float>.self)
        q.storeBytes(of: hi, as: SIMD8<Float>.self)
    }
}
