import Foundation
import LatentVectors

/// Accuracy and ranking quality of a model on held-out ratings.
public struct Metrics: Sendable, Equatable {
    public var rmse: Double
    public var mae: Double
    /// Over users with held-out ratings >= 4 (their relevant items), ranking every item they did not
    /// rate in training.
    public var precisionAt10: Double
    public var recallAt10: Double
    public var ndcgAt10: Double
}

public enum Evaluation {
    /// Splits ratings into (train, test) by a seeded shuffle.
    public static func split(_ ratings: [Rating], testFraction: Double, seed: UInt64) -> ([Rating], [Rating]) {
        var rng = SplitMix64(seed: seed)
        var shuffled = ratings
        shuffled.shuffle(using: &rng)
        let testCount = Int((Double(ratings.count) * testFraction).rounded())
        return (Array(shuffled[testCount...]), Array(shuffled[..<testCount]))
    }

    /// K folds of a seeded shuffle: fold f tests on every k-th rating starting at f.
    public static func folds(_ ratings: [Rating], k: Int, seed: UInt64) -> [([Rating], [Rating])] {
        var rng = SplitMix64(seed: seed)
        var shuffled = ratings
        shuffled.shuffle(using: &rng)
        return (0..<k).map { f in
            var train: [Rating] = [], test: [Rating] = []
            for (i, r) in shuffled.enumerated() { if i % k == f { test.append(r) } else { train.append(r) } }
            return (train, test)
        }
    }

    public static func rmse(_ test: [Rating], _ predict: (Int, Int) -> Float) -> (rmse: Double, mae: Double) {
        var se = 0.0, ae = 0.0
        for r in test {
            let e = Double(r.value) - Double(predict(Int(r.user), Int(r.item)))
            se += e * e
            ae += abs(e)
        }
        let n = Double(max(test.count, 1))
        return ((se / n).squareRoot(), ae / n)
    }

    /// precision@10, recall@10, NDCG@10 with `score(user, item)`; items rated in training are excluded.
    public static func ranking(train: [Rating], test: [Rating], items: Int,
                               score: @escaping (Int, Int) -> Float) -> (precision: Double, recall: Double, ndcg: Double) {
        var seen: [Int32: Set<Int32>] = [:]
        for r in train { seen[r.user, default: []].insert(r.item) }
        var relevant: [Int32: Set<Int32>] = [:]
        for r in test where r.value >= 4 { relevant[r.user, default: []].insert(r.item) }
        let users = Array(relevant.keys)
        var sums = [(Double, Double, Double)](repeating: (0, 0, 0), count: users.count)
        sums.withUnsafeMutableBufferPointer { out in
            let base = out.baseAddress!
            DispatchQueue.concurrentPerform(iterations: users.count) { n in
                let u = users[n]
                let rel = relevant[u]!
                let exclude = seen[u] ?? []
                var top: [(Float, Int32)] = []
                for i in 0..<Int32(items) where !exclude.contains(i) {
                    let s = score(Int(u), Int(i))
                    if top.count < 10 {
                        top.append((s, i))
                        if top.count == 10 { top.sort { $0.0 > $1.0 } }
                    } else if s > top[9].0 {
                        top[9] = (s, i)
                        top.sort { $0.0 > $1.0 }
                    }
                }
                top.sort { $0.0 > $1.0 }
                var hits = 0.0, dcg = 0.0
                for (rank, (_, i)) in top.enumerated() where rel.contains(i) {
                    hits += 1
                    dcg += 1 / log2(Double(rank) + 2)
                }
                let ideal = (0..<min(10, rel.count)).reduce(0.0) { $0 + 1 / log2(Double($1) + 2) }
                base[n] = (hits / 10, hits / Double(rel.count), ideal > 0 ? dcg / ideal : 0)
            }
        }
        let n = Double(max(users.count, 1))
        return (sums.reduce(0) { $0 + $1.0 } / n, sums.reduce(0) { $0 + $1.1 } / n, sums.reduce(0) { $0 + $1.2 } / n)
    }

    public static func evaluate(_ model: Model, train: [Rating], test: [Rating]) -> Metrics {
        let (rmse, mae) = rmse(test) { model.predict(user: $0, item: $1) }
        let (p, r, n) = ranking(train: train, test: test, items: model.itemCount) { model.predict(user: $0, item: $1) }
        return Metrics(rmse: rmse, mae: mae, precisionAt10: p, recallAt10: r, ndcgAt10: n)
    }

    /// The baselines every report shows beside the model: random scores (uniform over the rating range),
    /// the global mean, and most-popular (items ranked by training count; rating predicted as the mean).
    public static func baselines(train: [Rating], test: [Rating], items: Int, seed: UInt64) -> [(String, Metrics)] {
        let mean = Float(train.reduce(0.0) { $0 + Double($1.value) } / Double(max(train.count, 1)))
        let lo = train.map(\.value).min() ?? 0, hi = train.map(\.value).max() ?? 5
        var popularity = [Float](repeating: 0, count: items)
        for r in train { popularity[Int(r.item)] += 1 }
        func randomScore(_ u: Int, _ i: Int) -> Float {
            var g = SplitMix64(seed: seed ^ UInt64(u &* 1_000_003 &+ i))
            return lo + (hi - lo) * Float(g.next() >> 40) / Float(1 << 24)
        }
        let random = rmse(test, randomScore)
        let randomRank = ranking(train: train, test: test, items: items, score: randomScore)
        let meanErr = rmse(test) { _, _ in mean }
        let popular = ranking(train: train, test: test, items: items) { _, i in popularity[i] }
        return [
            ("random", Metrics(rmse: random.rmse, mae: random.mae, precisionAt10: randomRank.precision, recallAt10: randomRank.recall, ndcgAt10: randomRank.ndcg)),
            ("global mean", Metrics(rmse: meanErr.rmse, mae: meanErr.mae, precisionAt10: randomRank.precision, recallAt10: randomRank.recall, ndcgAt10: randomRank.ndcg)),
            ("most popular", Metrics(rmse: meanErr.rmse, mae: meanErr.mae, precisionAt10: popular.precision, recallAt10: popular.recall, ndcgAt10: popular.ndcg)),
        ]
    }
}
