/// How two vectors are compared. Internally every metric is turned into a distance where lower is better,
/// so one top-k routine serves all three; `score(fromDistance:)` turns it back into what users see.
public enum Metric: String, CaseIterable, Sendable, Codable {
    /// Angle only. Score is Redis vector sets' similarity `1 - cosine_distance / 2`, 0...1, higher is better.
    case cosine = "COSINE"
    /// Euclidean distance, lower is better. Internally the squared distance (same order, no square root).
    case l2 = "L2"
    /// Inner product, higher is better: what matrix-factorisation models score with.
    case ip = "IP"

    /// Whether a larger user-facing score is better.
    public var higherIsBetter: Bool { self != .l2 }

    /// The user-facing score for an internal distance. Float rounding can put a cosine distance a hair
    /// outside 0...2 (or a squared L2 distance below 0): the score is clamped to its defined range, as
    /// clients check (redis-py asserts similarity <= 1).
    @inlinable
    public func score(fromDistance d: Float) -> Double {
        switch self {
        case .cosine: return min(1, max(0, 1.0 - Double(d) / 2.0))
        case .l2: return Double(max(d, 0)).squareRoot()
        case .ip: return -Double(d)
        }
    }
}
