import Foundation
import LatentVectors

/// Top-k ranking quality, defined as the `implicit` package's `ranking_metrics_at_k` defines it (so
/// figures compare with what recommender engineers already report), plus recall, hit rate and coverage.
public struct RankingMetrics: Sendable, Equatable {
    public var k: Int
    /// Users evaluated: those with at least one relevant held-out item.
    public var users: Int
    /// Hits summed over users / sum over users of min(k, relevant items) (implicit's micro average).
    public var precision: Double
    /// Mean over users of hits / relevant items.
    public var recall: Double
    /// Mean over users of DCG / ideal DCG, with gains 1 / log2(rank + 2) and the ideal over min(k, relevant).
    public var ndcg: Double
    /// Mean over users of (sum over hits of hits-so-far / rank) / min(k, relevant).
    public var map: Double
    /// Share of users with at least one hit.
    public var hitRate: Double
    /// Distinct items recommended to anyone / items in the catalogue.
    public var coverage: Double
}

public enum RankingEvaluation {
    /// Ranks, for every user with a relevant held-out item (test rating >= `relevantMin`), every item
    /// the user did not interact with in `train`, by `score(user, scores)` which fills one score per item;
    /// the top `k` (equal scores: lower item index first) are compared with the relevant items.
    public static func evaluate(train: [Rating], test: [Rating], users: Int, items: Int, k: Int = 10,
                                relevantMin: Float = 4, threads: Int = 0,
                                score: (Int, UnsafeMutableBufferPointer<Float>) -> Void) -> RankingMetrics {
        let seen = InteractionMatrix(train.filter { $0.user >= 0 && $0.item >= 0 }, users: users, items: items, byUser: true)
        let relevant = InteractionMatrix(test.filter { $0.user >= 0 && $0.item >= 0 && $0.value >= relevantMin },
                                         users: users, items: items, byUser: true)
        let evaluated = (0..<users).filter { !relevant.range(of: $0).isEmpty }
        let gains = (0..<k).map { 1 / log2(Double($0) + 2) }
        let threadCount = ParallelRows.threadCount(threads)
        // Per evaluated user: hits, min(k, relevant), recall, ndcg, ap; and its top-k items.
        var perUser = [(hits: Double, divisor: Double, recall: Double, ndcg: Double, ap: Double)](
            repeating: (0, 0, 0, 0, 0), count: evaluated.count)
        var recommended = [Int32](repeating: -1, count: evaluated.count * k)
        var scratch = [Float](repeating: 0, count: threadCount * items)
        perUser.withUnsafeMutableBufferPointer { out in
            recommended.withUnsafeMutableBufferPointer { rec in
                scratch.withUnsafeMutableBufferPointer { sb in
                    // Invariants: entry n of `out` and k-slice n of `rec` belong to evaluated user n alone;
                    // thread t uses only scratch[t*items ..< (t+1)*items].
                    let O = out.baseAddress!, R = rec.baseAddress!, S = sb.baseAddress!
                    ParallelRows.run(count: evaluated.count, threads: threads) { thread, range in
                        let scores = UnsafeMutableBufferPointer(start: S + thread * items, count: items)
                        var top: [(score: Float, item: Int32)] = []
                        top.reserveCapacity(k + 1)
                        for n in range {
                            let u = evaluated[n]
                            score(u, scores)
                            top.removeAll(keepingCapacity: true)
                            let seenRange = seen.range(of: u)
                            var nextSeen = seenRange.lowerBound
                            for i in 0..<items {
                                // The user's training items are skipped (both lists ascend).
                                if nextSeen < seenRange.upperBound && seen.columns[nextSeen] == Int32(i) {
                                    nextSeen += 1
                                    continue
                                }
                                let s = scores[i]
                                if top.count == k && !(s > top[k - 1].score) { continue }
                                var at = top.count
                                while at > 0 && s > top[at - 1].score { at -= 1 }
                                top.insert((s, Int32(i)), at: at)
                                if top.count > k { top.removeLast() }
                            }
                            let relevantCount = relevant.range(of: u).count
                            let divisor = Double(min(k, relevantCount))
                            var hits = 0.0, dcg = 0.0, ap = 0.0
                            for (rank, entry) in top.enumerated() {
                                R[n * k + rank] = entry.item
                                if relevant.contains(row: u, column: entry.item) {
                                    hits += 1
                                    ap += hits / Double(rank + 1)
                                    dcg += gains[rank]
                                }
                            }
                            let ideal = gains[0..<Int(divisor)].reduce(0, +)
                            O[n] = (hits, divisor, hits / Double(relevantCount), dcg / ideal, ap / divisor)
                        }
                    }
                }
            }
        }
        let count = Double(max(evaluated.count, 1))
        let covered = Set(recommended.filter { $0 >= 0 })
        return RankingMetrics(
            k: k, users: evaluated.count,
            precision: perUser.reduce(0) { $0 + $1.hits } / max(perUser.reduce(0) { $0 + $1.divisor }, 1),
            recall: perUser.reduce(0) { $0 + $1.recall } / count,
            ndcg: perUser.reduce(0) { $0 + $1.ndcg } / count,
            map: perUser.reduce(0) { $0 + $1.ap } / count,
            hitRate: Double(perUser.filter { $0.hits > 0 }.count) / count,
            coverage: Double(covered.count) / Double(max(items, 1)))
    }

    /// A model's scores for a user: p_u . q_i + b_i (the global mean and the user's bias rank nothing).
    public static func evaluate(_ model: Model, train: [Rating], test: [Rating], k: Int = 10, relevantMin: Float = 4,
                                threads: Int = 0) -> RankingMetrics {
        let f = model.factors
        return model.userFactors.withUnsafeBufferPointer { P in
            model.itemFactors.withUnsafeBufferPointer { Q in
                evaluate(train: train, test: test, users: model.userCount, items: model.itemCount, k: k,
                         relevantMin: relevantMin, threads: threads) { u, out in
                    let p = P.baseAddress! + u * f
                    for i in 0..<model.itemCount {
                        out[i] = DistanceKernels.dot(p, Q.baseAddress! + i * f, f) + model.itemBias[i]
                    }
                }
            }
        }
    }

    /// Most-popular (items by number of training interactions) and random (a seeded permutation per user),
    /// evaluated exactly as a model is.
    public static func baselines(train: [Rating], test: [Rating], users: Int, items: Int, k: Int = 10,
                                 relevantMin: Float = 4, seed: UInt64 = 42) -> [(String, RankingMetrics)] {
        var popularity = [Float](repeating: 0, count: items)
        for r in train where r.item >= 0 { popularity[Int(r.item)] += 1 }
        let popular = evaluate(train: train, test: test, users: users, items: items, k: k, relevantMin: relevantMin) { _, out in
            for i in 0..<items { out[i] = popularity[i] }
        }
        let random = evaluate(train: train, test: test, users: users, items: items, k: k, relevantMin: relevantMin) { u, out in
            var g = SplitMix64(seed: seed ^ (UInt64(u) &* 0x9E37_79B9_7F4A_7C15))
            for i in 0..<items { out[i] = Float(g.next() >> 40) }
        }
        return [("most popular", popular), ("random", random)]
    }
}
