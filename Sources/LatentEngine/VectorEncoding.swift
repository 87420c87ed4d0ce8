import Foundation
import LatentVectors

/// A collection's vector encoding, as Redis' vector sets name them (`VADD ... NOQUANT|Q8|BIN`,
/// VINFO `quant-type`). LatentDB keeps every vector in float32 (in RocksDB and in memory) in every
/// mode and searches with it. VEMB RAW returns the encoded form as Redis does; plain VEMB returns the
/// stored float32 vector for FP32 and Q8 (LatentDB keeps it, so there is no reason to hand back a
/// degraded copy: Redis' own Q8 answer is within 1/127 of the range of it) and the signs for BIN, whose
/// vectors are binary embeddings by the user's choice (Redis returns +-1 too). The in-memory Q8/BIN
/// encodings that save memory are issue #11's work; the choice is stored already.
public enum VectorEncoding: String, Codable, Sendable, CaseIterable {
    case fp32 = "f32"
    case q8 = "int8"
    case bin = "bin"

    /// What VEMB returns for a stored vector.
    public func shown(_ v: [Float]) -> [Float] {
        switch self {
        case .fp32, .q8: return v
        case .bin: return v.map { $0 > 0 ? 1 : -1 }
        }
    }

    /// VEMB RAW: the encoded bytes, the L2 norm, and for Q8 the range (the largest magnitude of the
    /// normalised vector, which 127 stands for).
    public func raw(_ v: [Float]) -> (bytes: [UInt8], l2: Double, range: Double?) {
        let l2 = sqrt(v.reduce(0.0) { $0 + Double($1) * Double($1) })
        switch self {
        case .fp32:
            var out = [UInt8]()
            out.reserveCapacity(v.count * 4)
            for x in v { withUnsafeBytes(of: x.bitPattern.littleEndian) { out.append(contentsOf: $0) } }
            return (out, l2, nil)
        case .q8:
            let normalised = l2 > 0 ? v.map { Float(Double($0) / l2) } : v
            let range = Double(normalised.reduce(Float(0)) { max($0, abs($1)) })
            let q = Q8.encode(normalised)
            return (q.values.map { UInt8(bitPattern: $0) }, l2, range)
        case .bin:
            var out = [UInt8](repeating: 0, count: (v.count + 7) / 8)
            for (i, x) in v.enumerated() where x > 0 { out[i / 8] |= 1 << UInt8(i % 8) }
            return (out, l2, nil)
        }
    }
}

/// Q8: one signed byte per component and one scale per vector (`x ~ q * scale`, |q| <= 127).
enum Q8 {
    static func encode(_ v: [Float]) -> (values: [Int8], scale: Float) {
        let maxAbs = v.reduce(Float(0)) { max($0, abs($1)) }
        guard maxAbs > 0, maxAbs.isFinite else { return ([Int8](repeating: 0, count: v.count), 0) }
        let scale = maxAbs / 127
        return (v.map { Int8(max(-127, min(127, ($0 / scale).rounded()))) }, scale)
    }
}

/// VADD's REDUCE: a random projection from `inputDimension` down to the collection's dimension, fixed
/// by `seed` and stored with the collection, so every replica and every restart projects the same way.
/// Entries are +-1/sqrt(inputDimension) with equal probability (Achlioptas' sparse-free variant), which
/// preserves distances in expectation.
public struct Projection: Codable, Equatable, Sendable {
    public var inputDimension: Int
    public var seed: UInt64

    public init(inputDimension: Int, seed: UInt64) {
        self.inputDimension = inputDimension
        self.seed = seed
    }

    /// `outputDimension` rows of `inputDimension` columns, row-major.
    func matrix(outputDimension: Int) -> [Float] {
        var rng = SplitMix64(seed: seed)
        let scale = 1 / Float(Double(inputDimension).squareRoot())
        var m = [Float](repeating: 0, count: outputDimension * inputDimension)
        var bits: UInt64 = 0
        var left = 0
        for i in 0..<m.count {
            if left == 0 { bits = rng.next(); left = 64 }
            m[i] = bits & 1 == 0 ? scale : -scale
            bits >>= 1
            left -= 1
        }
        return m
    }

    /// The projected vector; `v` has `inputDimension` components.
    func apply(_ v: [Float], matrix: [Float], outputDimension: Int) -> [Float] {
        var out = [Float](repeating: 0, count: outputDimension)
        for i in 0..<outputDimension {
            var sum: Float = 0
            let row = i * inputDimension
            for j in 0..<inputDimension { sum += matrix[row + j] * v[j] }
            out[i] = sum
        }
        return out
    }
}
