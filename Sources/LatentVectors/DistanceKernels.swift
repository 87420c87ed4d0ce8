import Foundation

/// SIMD distance kernels over raw float buffers.
///
/// Plain Swift float loops keep strict IEEE summation order, so the compiler will not vectorise them.
/// These kernels sum in SIMD16 lanes with two independent accumulators (hiding FMA latency), then a
/// SIMD8 step and a scalar tail, so every dimension works, not only multiples of 16. The target is
/// compiled for x86-64-v3 (AVX2 + FMA); docs/benchmarks.md has the measured ns per vector.
///
/// Deliberately not `@inlinable`: inlined into another module, the SIMD code would be compiled with that
/// module's flags (no AVX2) and measured 4x slower than the scalar loop. A call per vector costs far less.
public enum DistanceKernels {
    /// The code the kernels were compiled to (this target's flags in Package.swift).
    public static let codePath: String = {
        #if arch(x86_64)
        return "x86-64-v3 (AVX2, FMA), chosen at compile time"
        #elseif arch(arm64)
        return "arm64 NEON, chosen at compile time"
        #else
        return "portable SIMD, chosen at compile time"
        #endif
    }()
    @inline(__always)
    static func load16(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
    }

    @inline(__always)
    static func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }

    /// Horizontal sums by halving: log2 steps of vector adds instead of a lane-by-lane scalar chain.
    @inline(__always)
    static func hsum(_ v: SIMD16<Float>) -> Float { hsum(v.lowHalf + v.highHalf) }

    @inline(__always)
    static func hsum(_ v: SIMD8<Float>) -> Float {
        let q = v.lowHalf + v.highHalf
        let p = q.lowHalf + q.highHalf
        return p.x + p.y
    }

    /// Dot product of two vectors of `n` floats.
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        dotInline(a, b, n)
    }

    /// Squared Euclidean distance of two vectors of `n` floats.
    public static func l2Squared(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        l2SquaredInline(a, b, n)
    }

    @inline(__always)
    static func dotInline(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var i = 0
        var s: Float = 0
        // Small dimensions (MF models often use 10..32 factors) skip the SIMD16 lanes and their
        // horizontal sum entirely.
        if n >= 16 {
            var acc0 = SIMD16<Float>(), acc1 = SIMD16<Float>()
            while i + 32 <= n {
                acc0.addProduct(load16(a + i), load16(b + i))
                acc1.addProduct(load16(a + i + 16), load16(b + i + 16))
                i += 32
            }
            if i + 16 <= n {
                acc0.addProduct(load16(a + i), load16(b + i))
                i += 16
            }
            s = hsum(acc0 + acc1)
        }
        if i + 8 <= n {
            s += hsum(load8(a + i) * load8(b + i))
            i += 8
        }
        while i < n {
            s += a[i] * b[i]
            i += 1
        }
        return s
    }

    @inline(__always)
    static func l2SquaredInline(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var i = 0
        var s: Float = 0
        if n >= 16 {
            var acc0 = SIMD16<Float>(), acc1 = SIMD16<Float>()
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
            s = hsum(acc0 + acc1)
        }
        if i + 8 <= n {
            let d = load8(a + i) - load8(b + i)
            s += hsum(d * d)
            i += 8
        }
        while i < n {
            let d = a[i] - b[i]
            s += d * d
            i += 1
        }
        return s
    }

    /// The internal distance (lower is better) for `metric`. For COSINE, `invNormA` and `invNormB` are the
    /// reciprocal lengths, precomputed once per stored vector so a scan costs one dot product per vector.
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

    /// Internal distances (lower is better) from `query` to `count` vectors stored back to back at `base`,
    /// written to `out`. One call per block of vectors keeps the whole loop in this AVX2-compiled module;
    /// `invNorms` (one per vector) is only read for COSINE.
    public static func distances(_ metric: Metric, query: UnsafePointer<Float>, base: UnsafePointer<Float>, count: Int,
                                 dimension n: Int, invNorms: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>) {
        var v = base
        switch metric {
        case .l2:
            for i in 0..<count {
                out[i] = l2SquaredInline(query, v, n)
                v += n
            }
        case .ip:
            for i in 0..<count {
                out[i] = -dotInline(query, v, n)
                v += n
            }
        case .cosine:
            let qInv = inverseNorm(query, n)
            for i in 0..<count {
                let c = dotInline(query, v, n) * qInv * invNorms[i]
                out[i] = 1 - min(max(c, -1), 1)
                v += n
            }
        }
    }

    /// 1 / |a|, or 0 for the zero vector.
    public static func inverseNorm(_ a: UnsafePointer<Float>, _ n: Int) -> Float {
        let sq = dot(a, a, n)
        return sq > 0 ? 1 / sq.squareRoot() : 0
    }
}

/// The per-rating step of matrix-factorisation SGD, vectorised like the distance kernels (this target is
/// compiled for AVX2/FMA): with e the rating's error,
/// p += lr (e q - reg p) and q += lr (e p - reg q), both from the old values.
public enum FactorUpdate {
    /// One whole SGD step for a rating: e = target - (offset + p . q), then the update below; returns e.
    /// Fused so the rows are read once and the step is one call.
    public static func sgdRating(_ p: UnsafeMutablePointer<Float>, _ q: UnsafeMutablePointer<Float>, _ n: Int,
                                 target: Float, offset: Float, learningRate lr: Float, regularization reg: Float) -> Float {
        let e = target - (offset + DistanceKernels.dotInline(p, q, n))
        sgdStep(p, q, n, error: e, learningRate: lr, regularization: reg)
        return e
    }

    public static func sgdStep(_ p: UnsafeMutablePointer<Float>, _ q: UnsafeMutablePointer<Float>, _ n: Int,
                               error e: Float, learningRate lr: Float, regularization reg: Float) {
        var i = 0
        let le = SIMD8<Float>(repeating: lr * e), lreg = SIMD8<Float>(repeating: 1 - lr * reg)
        while i + 8 <= n {
            let pv = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self)
            let qv = UnsafeRawPointer(q + i).loadUnaligned(as: SIMD8<Float>.self)
            // p (1 - lr reg) + lr e q, and the same for q from the old p.
            UnsafeMutableRawPointer(p + i).storeBytes(of: pv * lreg + le * qv, as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(q + i).storeBytes(of: qv * lreg + le * pv, as: SIMD8<Float>.self)
            i += 8
        }
        while i < n {
            let pf = p[i], qf = q[i]
            p[i] += lr * (e * qf - reg * pf)
            q[i] += lr * (e * pf - reg * qf)
            i += 1
        }
    }

    /// y += a x over `n` floats (the conjugate-gradient updates of implicit ALS).
    public static func axpy(_ a: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        let av = SIMD8<Float>(repeating: a)
        while i + 8 <= n {
            let xv = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
            let yv = UnsafeRawPointer(y + i).loadUnaligned(as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(y + i).storeBytes(of: yv + av * xv, as: SIMD8<Float>.self)
            i += 8
        }
        while i < n {
            y[i] += a * x[i]
            i += 1
        }
    }

    /// One BPR step for user row p, liked item row qi and sampled item row qj (Rendle et al. 2009):
    /// x = p . (qi - qj), z = 1 / (1 + e^x), then p += lr (z (qi - qj) - reg p), qi += lr (z p - reg qi),
    /// qj += lr (-z p - reg qj), all from the old values. Returns z (how wrong the pair was ranked).
    public static func bprStep(_ p: UnsafeMutablePointer<Float>, _ qi: UnsafeMutablePointer<Float>,
                               _ qj: UnsafeMutablePointer<Float>, _ n: Int, learningRate lr: Float,
                               regularization reg: Float) -> Float {
        let x = DistanceKernels.dotInline(p, qi, n) - DistanceKernels.dotInline(p, qj, n)
        let z = 1 / (1 + Foundation.exp(x))
        var i = 0
        let lz = SIMD8<Float>(repeating: lr * z), keep = SIMD8<Float>(repeating: 1 - lr * reg)
        while i + 8 <= n {
            let pv = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self)
            let iv = UnsafeRawPointer(qi + i).loadUnaligned(as: SIMD8<Float>.self)
            let jv = UnsafeRawPointer(qj + i).loadUnaligned(as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(p + i).storeBytes(of: pv * keep + lz * (iv - jv), as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(qi + i).storeBytes(of: iv * keep + lz * pv, as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(qj + i).storeBytes(of: jv * keep - lz * pv, as: SIMD8<Float>.self)
            i += 8
        }
        while i < n {
            let pf = p[i], fi = qi[i], fj = qj[i]
            p[i] += lr * (z * (fi - fj) - reg * pf)
            qi[i] += lr * (z * pf - reg * fi)
            qj[i] += lr * (-z * pf - reg * fj)
            i += 1
        }
        return z
    }
}
