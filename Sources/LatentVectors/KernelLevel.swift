import CLatentSupport
import Foundation
import LatentKernelsAVX2
import LatentKernelInterface
import LatentKernelsAVX512
import LatentKernelsPortable

/// The code-generation levels the distance kernels are compiled for, one module each (see
/// LatentKernelsPortable/Kernels.swift). One binary carries all three; which one runs is decided once per
/// process from the CPU (`supported`) or pinned with `LATENT_KERNELS=portable|avx2|avx512`.
public enum KernelLevel: Int, CaseIterable, Sendable, Comparable, CustomStringConvertible {
    /// Baseline SIMD of the architecture: SSE2 on x86-64, NEON on arm64.
    case portable = 0
    /// x86-64-v3: AVX2 and FMA.
    case avx2 = 1
    /// x86-64-v4: AVX-512 F/BW/CD/DQ/VL.
    case avx512 = 2

    public static func < (a: KernelLevel, b: KernelLevel) -> Bool { a.rawValue < b.rawValue }

    /// The environment variable that pins the level (tests use it to force the portable path).
    public static let environmentVariable = "LATENT_KERNELS"

    /// What `LATENT_KERNELS` accepts.
    public var name: String {
        switch self {
        case .portable: return "portable"
        case .avx2: return "avx2"
        case .avx512: return "avx512"
        }
    }

    public var description: String {
        switch self {
        case .portable:
            #if arch(arm64)
            return "portable (arm64 NEON)"
            #else
            return "portable (baseline SIMD, no AVX)"
            #endif
        case .avx2: return "avx2 (x86-64-v3: AVX2, FMA)"
        case .avx512: return "avx512 (x86-64-v4: AVX-512)"
        }
    }

    /// The best level this CPU and OS run (cpuid and xgetbv).
    public static let supported: KernelLevel = KernelLevel(rawValue: Int(latent_cpu_kernel_level())) ?? .portable

    /// Every level this CPU can run, lowest first.
    public static var runnable: [KernelLevel] { allCases.filter { $0 <= supported } }

    /// Why a requested level cannot be used.
    public enum SelectionError: Error, CustomStringConvertible, Equatable {
        case unknown(String)
        case unsupported(KernelLevel, best: KernelLevel)

        public var description: String {
            switch self {
            case .unknown(let s):
                return "\(KernelLevel.environmentVariable)=\(s) is not a kernel level: use portable, avx2 or avx512"
            case .unsupported(let l, let best):
                return "\(KernelLevel.environmentVariable)=\(l.name) needs instructions this CPU lacks: its best level is \(best.name)"
            }
        }
    }

    /// The level for a requested name (nil: the best supported). A level above what the CPU runs is an
    /// error rather than a SIGILL later.
    public static func select(requested: String?, supported: KernelLevel = KernelLevel.supported) throws -> KernelLevel {
        guard let requested, !requested.isEmpty else { return supported }
        guard let level = allCases.first(where: { $0.name == requested.lowercased() }) else {
            throw SelectionError.unknown(requested)
        }
        guard level <= supported else { throw SelectionError.unsupported(level, best: supported) }
        return level
    }
}

/// The kernels of one level as plain function values, so the hot loops call straight into the chosen
/// module. Build one with `KernelTable(level)` only for a level in `KernelLevel.runnable`.
public struct KernelTable: Sendable {
    public typealias Pair = @Sendable (UnsafePointer<Float>, UnsafePointer<Float>, Int) -> Float
    public typealias Batch = @Sendable (UnsafePointer<Float>, UnsafePointer<Float>, Int, Int, UnsafeMutablePointer<Float>) -> Void
    public typealias CosineBatch = @Sendable (UnsafePointer<Float>, UnsafePointer<Float>, Int, Int, UnsafePointer<Float>,
                                              UnsafeMutablePointer<Float>) -> Void

    public let level: KernelLevel
    public let dot: Pair
    public let l2Squared: Pair
    /// (query, base, count, dimension, out)
    public let l2Distances: Batch
    public let negatedDots: Batch
    /// (query, base, count, dimension, invNorms, out)
    public let cosineDistances: CosineBatch
    public let inverseNorm: @Sendable (UnsafePointer<Float>, Int) -> Float
    public let sgdRating: @Sendable (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, Int, Float, Float, Float, Float) -> Float
    public let sgdStep: @Sendable (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, Int, Float, Float, Float) -> Void
    public let axpy: @Sendable (Float, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void
    public let bprUpdate: @Sendable (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, Int,
                                     Float, Float, Float) -> Void

    public init(_ level: KernelLevel) {
        switch level {
        case .portable: self.init(level, LatentKernelsPortable.Kernels.self)
        case .avx2: self.init(level, LatentKernelsAVX2.Kernels.self)
        case .avx512: self.init(level, LatentKernelsAVX512.Kernels.self)
        }
    }

    private init<K: KernelFunctions>(_ level: KernelLevel, _: K.Type) {
        self.level = level
        dot = { K.dot($0, $1, $2) }
        l2Squared = { K.l2Squared($0, $1, $2) }
        l2Distances = { K.l2Distances(query: $0, base: $1, count: $2, dimension: $3, out: $4) }
        negatedDots = { K.negatedDots(query: $0, base: $1, count: $2, dimension: $3, out: $4) }
        cosineDistances = { K.cosineDistances(query: $0, base: $1, count: $2, dimension: $3, invNorms: $4, out: $5) }
        inverseNorm = { K.inverseNorm($0, $1) }
        sgdRating = { K.sgdRating($0, $1, $2, target: $3, offset: $4, learningRate: $5, regularization: $6) }
        sgdStep = { K.sgdStep($0, $1, $2, error: $3, learningRate: $4, regularization: $5) }
        axpy = { K.axpy($0, $1, $2, $3) }
        bprUpdate = { K.bprUpdate($0, $1, $2, $3, z: $4, learningRate: $5, regularization: $6) }
    }
}
