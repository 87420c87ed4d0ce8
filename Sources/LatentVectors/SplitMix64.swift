import Foundation

/// SplitMix64 (Steele, Lea, Flood): a tiny seeded generator. Everything that must be reproducible from a
/// seed uses it: HNSW levels, k-means sampling, SGD's initial factors and visiting order, benchmarks.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64
    private var spareGaussian: Float?

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 53 random bits.
    public mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }

    /// Normal with standard deviation `sd`. Box-Muller: each pair of uniforms gives two draws; the second
    /// is kept for the next call.
    public mutating func gaussian(sd: Float) -> Float {
        if let s = spareGaussian {
            spareGaussian = nil
            return s * sd
        }
        let u1 = max(unit(), 1e-300), u2 = unit()
        let r = (-2 * log(u1)).squareRoot()
        spareGaussian = Float(r * sin(2 * .pi * u2))
        return Float(r * cos(2 * .pi * u2)) * sd
    }
}
