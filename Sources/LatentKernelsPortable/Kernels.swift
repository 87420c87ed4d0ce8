// One source, three modules. This file is compiled by LatentKernelsPortable (no instruction-set flags)
// and, through symbolic links to it, by LatentKernelsAVX2 (x86-64-v3) and LatentKernelsAVX512
// (x86-64-v4); Package.swift gives each module its flags. Swift has no per-function target attribute,
// so a module per code-generation level is how one binary carries all three. LatentVectors'
// DistanceKernels picks one at start from cpuid (or LATENT_KERNELS) and calls through it; nothing
// else may call these modules, since on a CPU without AVX2 calling the AVX2 module is SIGILL.
//
// Kernels sum in SIMD16 lanes with two independent accumulators (hiding FMA latency), then a SIMD8
// step and a scalar tail, so every dimension works, not only multiples of 16. Nothing here is
// @inlinable: inlined into another module the code would be compiled with that module's flags.

import LatentKernelInterface

/// Distance kernels and the matrix-factorisation steps, as compiled for this module's level.
public enum Kernels: KernelFunctions {
    @inline(__always)
    static func load16(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
        // Invariant (every caller): p ..< p + 16 lies inside one caller-owned buffer of floats.
        UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
    }

    @inline(__always)
    static func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }

    /// acc += a * b. With FMA (x86-64-v3 and up, and arm64) one fused instruction; without it the
    /// fused form would become a libm call per lane, so the portable build multiplies and adds.
    /// Two concrete overloads rather than one generic over SIMD: debug builds (the tests) do not
    /// specialise, and a generic here made a debug HNSW build spend most of its time in metadata lookups.
    @inline(__always)
    static func multiplyAdd(_ acc: inout SIMD16<Float>, _ a: SIMD16<Float>, _ b: SIMD16<Float>) {
        #if LATENT_FMA || arch(arm64)
        acc.addProduct(a, b)
        #else
        acc += a * b
        #endif
    }

    @inline(__always)
    static func multiplyAdd(_ acc: inout SIMD8<Float>, _ a: SIMD8<Float>, _ b: SIMD8<Float>) {
        #if LATENT_FMA || arch(arm64)
        acc.addProduct(a, b)
        #else
        acc += a * b
        #endif
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
                multiplyAdd(&acc0, load16(a + i), load16(b + i))
                multiplyAdd(&acc1, load16(a + i + 16), load16(b + i + 16))
                i += 32
            }
            if i + 16 <= n {
                multiplyAdd(&acc0, load16(a + i), load16(b + i))
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
                multiplyAdd(&acc0, d0, d0)
                multiplyAdd(&acc1, d1, d1)
                i += 32
            }
            if i + 16 <= n {
                let d0 = load16(a + i) - load16(b + i)
                multiplyAdd(&acc0, d0, d0)
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

    /// Squared L2 distances from `query` to `count` vectors of `n` floats stored back to back at `base`.
    /// Invariant: base ..< base + count * n and out ..< out + count are the caller's.
    public static func l2Distances(query: UnsafePointer<Float>, base: UnsafePointer<Float>, count: Int, dimension n: Int,
                                   out: UnsafeMutablePointer<Float>) {
        var v = base
        for i in 0..<count {
            out[i] = l2SquaredInline(query, v, n)
            v += n
        }
    }

    /// Negated dot products (IP as a distance, lower is better), laid out as in `l2Distances`.
    public static func negatedDots(query: UnsafePointer<Float>, base: UnsafePointer<Float>, count: Int, dimension n: Int,
                                   out: UnsafeMutablePointer<Float>) {
        var v = base
        for i in 0..<count {
            out[i] = -dotInline(query, v, n)
            v += n
        }
    }

    /// Cosine distances 1 - cos, clamped to 0...2; `invNorms` holds one reciprocal length per vector.
    public static func cosineDistances(query: UnsafePointer<Float>, base: UnsafePointer<Float>, count: Int, dimension n: Int,
                                       invNorms: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>) {
        let qInv = inverseNorm(query, n)
        var v = base
        for i in 0..<count {
            let c = dotInline(query, v, n) * qInv * invNorms[i]
            out[i] = 1 - min(max(c, -1), 1)
            v += n
        }
    }

    /// 1 / |a|, or 0 for the zero vector.
    public static func inverseNorm(_ a: UnsafePointer<Float>, _ n: Int) -> Float {
        let sq = dotInline(a, a, n)
        return sq > 0 ? 1 / sq.squareRoot() : 0
    }

    // MARK: Matrix-factorisation steps

    /// One whole SGD step for a rating: e = target - (offset + p . q), then `sgdStep`; returns e.
    public static func sgdRating(_ p: UnsafeMutablePointer<Float>, _ q: UnsafeMutablePointer<Float>, _ n: Int,
                                 target: Float, offset: Float, learningRate lr: Float, regularization reg: Float) -> Float {
        let e = target - (offset + dotInline(p, q, n))
        sgdStepInline(p, q, n, error: e, learningRate: lr, regularization: reg)
        return e
    }

    /// p += lr (e q - reg p) and q += lr (e p - reg q), both from the old values.
    public static func sgdStep(_ p: UnsafeMutablePointer<Float>, _ q: UnsafeMutablePointer<Float>, _ n: Int,
                               error e: Float, learningRate lr: Float, regularization reg: Float) {
        sgdStepInline(p, q, n, error: e, learningRate: lr, regularization: reg)
    }

    @inline(__always)
    static func sgdStepInline(_ p: UnsafeMutablePointer<Float>, _ q: UnsafeMutablePointer<Float>, _ n: Int,
                              error e: Float, learningRate lr: Float, regularization reg: Float) {
        var i = 0
        let le = SIMD8<Float>(repeating: lr * e), lreg = SIMD8<Float>(repeating: 1 - lr * reg)
        while i + 8 <= n {
            let pv = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self)
            let qv = UnsafeRawPointer(q + i).loadUnaligned(as: SIMD8<Float>.self)
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

    /// y += a x over `n` floats.
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

    /// One BPR step (Rendle et al. 2009) given x = p . (qi - qj) already turned into z = 1 / (1 + e^x):
    /// p += lr (z (qi - qj) - reg p), qi += lr (z p - reg qi), qj += lr (-z p - reg qj), from the old values.
    public static func bprUpdate(_ p: UnsafeMutablePointer<Float>, _ qi: UnsafeMutablePointer<Float>,
                                 _ qj: UnsafeMutablePointer<Float>, _ n: Int, z: Float, learningRate lr: Float,
                                 regularization reg: Float) {
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
    }
}
