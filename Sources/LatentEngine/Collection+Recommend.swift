import LatentFilter
import LatentIndex
import LatentVectors

/// How VRECOMMEND turns example elements into a ranking.
public enum RecommendStrategy: Sendable {
    /// One search with the mean of the positives minus the mean of the negatives.
    case average
    /// Each candidate scored by its best similarity to a positive minus its best to a negative.
    case best
}

/// Recommendation from examples: the session / anonymous-user case ("liked these, skipped that").
///
/// Similarity is the metric's score turned "higher is better": the score itself for COSINE (Redis'
/// similarity, 0..1) and IP, the negated distance for L2. Under COSINE each example is normalised
/// before averaging, so a long vector does not outweigh the others.
extension Collection {
    /// Candidates BEST collects per positive example (at least this, or 8 x COUNT): the union of the
    /// neighbourhoods of the positives, and of AVERAGE's query when there are negatives (where elements
    /// near the positives and far from the negatives lie), is then scored exactly against every example.
    static let bestCandidatesPerPositive = 100

    public func recommend(positives: [[Float]], negatives: [[Float]], strategy: RecommendStrategy, _ params: SearchParameters,
                          exact: Bool = false, withAttributes: Bool = false, excluding: Set<ElementID> = [],
                          filter: FilterExpression? = nil) throws -> [SearchHit] {
        guard !positives.isEmpty else { throw EngineError.invalidFoldIn("VRECOMMEND needs at least one POSITIVE example") }
        try Validation.count(params.k)
        switch strategy {
        case .average:
            var query = mean(positives)
            if !negatives.isEmpty {
                let m = mean(negatives)
                for i in query.indices { query[i] -= m[i] }
            }
            if metric == .cosine && query.allSatisfy({ $0 == 0 }) {
                throw EngineError.invalidFoldIn("the positives' mean equals the negatives' mean: AVERAGE has no direction to search; use STRATEGY BEST")
            }
            return try search(query, params, exact: exact, withAttributes: withAttributes, excluding: excluding, filter: filter)
        case .best:
            // Candidates: every allowed element (exact), or the neighbourhood of each positive.
            var candidates = Set<ElementID>()
            let perPositive = exact ? max(1, count) : min(max(1, count), max(Self.bestCandidatesPerPositive, params.k > Int.max / 8 ? Int.max : params.k * 8))
            var probes = positives
            if !negatives.isEmpty && !exact {
                var direction = mean(positives)
                let m = mean(negatives)
                for i in direction.indices { direction[i] -= m[i] }
                if direction.contains(where: { $0 != 0 }) { probes.append(direction) }
            }
            for p in probes {
                var wide = params
                wide.k = perPositive
                wide.ef = params.ef.map { max($0, perPositive) }
                for hit in try search(p, wide, exact: exact, excluding: excluding, filter: filter) { candidates.insert(hit.id) }
                if exact { break }  // one exact pass already lists every allowed element
            }
            var scored: [(id: ElementID, score: Double)] = []
            scored.reserveCapacity(candidates.count)
            for id in candidates {
                guard let v = vector(of: id) else { continue }  // deleted meanwhile
                let bestPositive = positives.map { similarity($0, v) }.max() ?? 0
                let bestNegative = negatives.map { similarity($0, v) }.max()
                scored.append((id, bestPositive - (bestNegative ?? 0)))
            }
            scored.sort { $0.score > $1.score || ($0.score == $1.score && $0.id < $1.id) }
            var out: [SearchHit] = []
            for (id, score) in scored.prefix(params.k) {
                if withAttributes {
                    guard let attributes = try? self.attributes(of: id) else { continue }  // deleted meanwhile
                    out.append(SearchHit(id: id, score: score, attributes: attributes))
                } else {
                    out.append(SearchHit(id: id, score: score, attributes: nil))
                }
            }
            return out
        }
    }

    /// The component-wise mean (COSINE: of the normalised vectors). Vectors were validated by the caller
    /// (stored elements): `dimension` components each, finite, non-zero under COSINE.
    private func mean(_ vectors: [[Float]]) -> [Float] {
        var sum = [Double](repeating: 0, count: dimension)
        for v in vectors {
            var scale = 1.0
            if metric == .cosine {
                let norm = v.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
                scale = norm > 0 ? 1 / norm : 0
            }
            for i in 0..<min(dimension, v.count) { sum[i] += Double(v[i]) * scale }
        }
        return sum.map { Float($0 / Double(vectors.count)) }
    }

    /// Higher-is-better similarity under the collection's metric.
    func similarity(_ a: [Float], _ b: [Float]) -> Double {
        var dot = 0.0, aa = 0.0, bb = 0.0, l2 = 0.0
        for i in 0..<min(a.count, b.count) {
            let x = Double(a[i]), y = Double(b[i])
            dot += x * y
            aa += x * x
            bb += y * y
            l2 += (x - y) * (x - y)
        }
        switch metric {
        case .ip: return dot
        case .l2: return -l2.squareRoot()
        case .cosine:
            let c = aa > 0 && bb > 0 ? dot / (aa.squareRoot() * bb.squareRoot()) : 0
            return 1 - (1 - min(max(c, -1), 1)) / 2
        }
    }
}
