import LatentVectors

/// The project's seeded generator, so every test run sees the same data.
typealias SeededRandom = SplitMix64

extension SplitMix64 {
    mutating func vector(_ n: Int) -> [Float] { (0..<n).map { _ in Float.random(in: -1...1, using: &self) } }
}
