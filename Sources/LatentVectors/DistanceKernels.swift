/// SIMD distance kernels over raw float buffers.
///
/// Plain Swift float loops keep strict IEEE summation order, so the compiler will not vectorise them.
/// These kernels sum in SIMD16 lanes with two independent accumulators (hiding FMA latency), then a
/// SIMD8 step and a scalar tail, so every dimension works, not only multiples of 16. The target is
/// compiled for x86-64-v3 (AVX2 + FMA); docs/benchmarks.md has the measured ns per vector.
public enum DistanceKernels {
    @inlinable @inline(__always)
    static func load16(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
    }

    @inlinable @inline(__always)
    static func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }

    /// Dot product of two vectors of `n` floats.
    @inlinable
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc0 = SIMD16<Float>(), acc1 = SIMD16<Float>()
        var i = 0
        while i + 32 <= n {
            acc0.addProduct(load16(a + i), load16(b + i))
            acc1.addProduct(load16(a + i + 16), load16(b + i + 16))
            i += 32
        }
        if i + 16 <= n {
            acc0.addProduct(load16(a + i), load16(b + i))
            i += 16
        }
        var acc8 = SIMD8<Float>()
        if i + 8 <= n {
            acc8.addProduct(load8(a + i), load8(b + i))
            i += 8
        }
        var s = (acc0 + acc1).sum() + acc8.sum()
        while i < n {
            s += a[i] * b[i]
            i += 1
        }
        return s
    }

    /// Squared Euclidean distance of two vectors of `n` floats.
    @inlinable
    public static func l2Squared(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc0 = SIMD16<Float>(), acc1 = SIMD16<Float>()
        var i = 0
        while i + 32 <= n {
            let d0 = load16(a + i) - load16(b + i)
            let d1 = load16(a + i + 16) - load16(b + i + 16)
            acc0.addProduct(d0, d0)
            acc1.addProduct(d1, d1)
            i += 32
        }
        if i + 16 <= n {
            let d0 = load16(a + i) - load16(b + i)
            acc0.addProduct(d0, d0)
            i += 16
        }
        var acc8 = SIMD8<Float>()
        if i + 8 <= n {
            let d = load8(a + i) - load8(b + i)
            acc8.addProduct(d, d)
            i += 8
        }
        var s = (acc0 + acc1).sum() + acc8.sum()
        while i < n {
            let d = a[i] - b[i]
            s += d * d
            i += 1
        }
        return s
    }

    /// The internal distance (lower is better) for `metric`. For COSINE, `invNormA` and `invNormB` are the
    /// reciprocal lengths, precomputed once per stored vector so a scan costs one dot product per vector.
    @inlinable @inline(__always)
    public static func distance(_ metric: Metric, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int,
                                invNormA: Float, invNormB: Float) -> Float {
        switch metric {
        case .l2: return l2Squared(a, b, n)
        case .ip: return -dot(a, b, n)
        case .cosine:
            let c = dot(a, b, n) * invNormA * invNormB
            return 1 - min(max(c, -1), 1)
        }
    }

    /// 1 / |a|, or 0 for the zero vector.
    @inlinable
    public static func inverseNorm(_ a: UnsafePointer<Float>, _ n: Int) -> Float {
        let sq = dot(a, a, n)
        return sq > 0 ? 1 / sq.squareRoot() : 0
    }
}
