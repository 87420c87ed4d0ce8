import Foundation

/// The distance kernels, as chosen for this process: `KernelLevel.select` over cpuid and
/// `LATENT_KERNELS`, once, at first use. The kernels themselves live in LatentKernelsPortable /
/// LatentKernelsAVX2 / LatentKernelsAVX512 (one source, three code-generation levels); this module is
/// compiled without instruction-set flags, so nothing outside the chosen kernel module can execute an
/// instruction the CPU lacks.
///
/// Hot loops (graph walk, list scans) hold `active` in a stored property and call its function values
/// directly; the static functions below are for everything else.
public enum DistanceKernels {
    /// The kernels this process runs. A `LATENT_KERNELS` value that is unknown or above what the CPU runs
    /// is reported by `selectionProblem` (latentd refuses to start on it) and the best level is used.
    public static let active: KernelTable = KernelTable(selection.level)

    /// What `LATENT_KERNELS` asked for, if it could not be honoured.
    public static var selectionProblem: KernelLevel.SelectionError? { selection.problem }

    private static let selection: (level: KernelLevel, problem: KernelLevel.SelectionError?) = {
        let requested = ProcessInfo.processInfo.environment[KernelLevel.environmentVariable]
        do {
            return (try KernelLevel.select(requested: requested), nil)
        } catch let error as KernelLevel.SelectionError {
            return (KernelLevel.supported, error)
        } catch {
            return (KernelLevel.supported, nil)
        }
    }()

    /// The level in use and how it was chosen, as `--version` and INFO report it.
    public static var codePath: String {
        let level = active.level
        let how = level == KernelLevel.supported ? "chosen at run time" : "pinned by \(KernelLevel.environmentVariable)"
        return "\(level) \(how); CPU supports up to \(KernelLevel.supported.name)"
    }

    /// Dot product of two vectors of `n` floats.
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        active.dot(a, b, n)
    }

    /// Squared Euclidean distance of two vectors of `n` floats.
    public static func l2Squared(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        active.l2Squared(a, b, n)
    }

    /// 1 / |a|, or 0 for the zero vector.
    public static func inverseNorm(_ a: UnsafePointer<Float>, _ n: Int) -> Float {
        active.inverseNorm(a, n)
    }

    /// The internal distance (lower is better) for `metric`. For COSINE, `invNormA` and `invNormB` are the
    /// reciprocal lengths, precomputed once per stored vector so a scan costs one dot product per vector.
    public static func distance(_ metric: Metric, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int,
                                invNormA: Float, invNormB: Float) -> Float {
        active.distance(metric, a, b, n, invNormA: invNormA, invNormB: invNormB)
    }

    /// Internal distances (lower is better) from `query` to `count` vectors stored back to back at `base`,
    /// written to `out`; `invNorms` (one per vector) is only read for COSINE.
    public static func distances(_ metric: Metric, query: UnsafePointer<Float>, base: UnsafePointer<Float>, count: Int,
                                 dimension n: Int, invNorms: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>) {
        active.distances(metric, query: query, base: base, count: count, dimension: n, invNorms: invNorms, out: out)
    }
}

extension KernelTable {
    /// See `DistanceKernels.distance`.
    @inline(__always)
    public func distance(_ metric: Metric, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int,
                         invNormA: Float, invNormB: Float) -> Float {
        switch metric {
        case .l2: return l2Squared(a, b, n)
        case .ip: return -dot(a, b, n)
        case .cosine:
            let c = dot(a, b, n) * invNormA * invNormB
            return 1 - min(max(c, -1), 1)
        }
    }

    /// See `DistanceKernels.distances`.
    @inline(__always)
    public func distances(_ metric: Metric, query: UnsafePointer<Float>, base: UnsafePointer<Float>, count: Int,
                          dimension n: Int, invNorms: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>) {
        switch metric {
        case .l2: l2Distances(query, base, count, n, out)
        case .ip: negatedDots(query, base, count, n, out)
        case .cosine: cosineDistances(query, base, count, n, invNorms, out)
        }
    }
}

/// The matrix-factorisation steps, run by the active kernel level (see `LatentKernelsPortable.Kernels`
/// for the formulas).
public enum FactorUpdate {
    /// e = target - (offset + p . q), then p += lr (e q - reg p), q += lr (e p - reg q); returns e.
    public static func sgdRating(_ p: UnsafeMutablePointer<Float>, _ q: UnsafeMutablePointer<Float>, _ n: Int,
                                 target: Float, offset: Float, learningRate lr: Float, regularization reg: Float) -> Float {
        DistanceKernels.active.sgdRating(p, q, n, target, offset, lr, reg)
    }

    public static func sgdStep(_ p: UnsafeMutablePointer<Float>, _ q: UnsafeMutablePointer<Float>, _ n: Int,
                               error e: Float, learningRate lr: Float, regularization reg: Float) {
        DistanceKernels.active.sgdStep(p, q, n, e, lr, reg)
    }

    /// y += a x over `n` floats (the conjugate-gradient updates of implicit ALS).
    public static func axpy(_ a: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        DistanceKernels.active.axpy(a, x, y, n)
    }

    /// One BPR step for user row p, liked item row qi and sampled item row qj (Rendle et al. 2009):
    /// x = p . (qi - qj), z = 1 / (1 + e^x), then p += lr (z (qi - qj) - reg p), qi += lr (z p - reg qi),
    /// qj += lr (-z p - reg qj), all from the old values. Returns z (how wrong the pair was ranked).
    public static func bprStep(_ p: UnsafeMutablePointer<Float>, _ qi: UnsafeMutablePointer<Float>,
                               _ qj: UnsafeMutablePointer<Float>, _ n: Int, learningRate lr: Float,
                               regularization reg: Float) -> Float {
        let k = DistanceKernels.active
        let x = k.dot(p, qi, n) - k.dot(p, qj, n)
        let z = 1 / (1 + Foundation.exp(x))
        k.bprUpdate(p, qi, qj, n, z, lr, reg)
        return z
    }
}
