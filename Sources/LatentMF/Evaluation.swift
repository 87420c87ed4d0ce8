import Foundation
import LatentVectors

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

    /// Leave-n-out per user: each user with more than `n` ratings has `n` of them (chosen by a seeded
    /// shuffle) held out; users with fewer are kept whole in training.
    public static func leaveOut(_ ratings: [Rating], perUser n: Int, seed: UInt64) -> ([Rating], [Rating]) {
        var rng = SplitMix64(seed: seed)
        var byUser: [Int32: [Int]] = [:]
        for (index, r) in ratings.enumerated() { byUser[r.user, default: []].append(index) }
        var isTest = [Bool](repeating: false, count: ratings.count)
        for user in byUser.keys.sorted() {
            var indexes = byUser[user]!
            guard indexes.count > n else { continue }
            indexes.shuffle(using: &rng)
            for index in indexes.prefix(n) { isTest[index] = true }
        }
        var train: [Rating] = [], test: [Rating] = []
        for (index, r) in ratings.enumerated() { if isTest[index] { test.append(r) } else { train.append(r) } }
        return (train, test)
    }

    /// By time: the latest `testFraction` of the ratings (by timestamp, ties by file order) are held out,
    /// as a model trained today is judged on what users do tomorrow.
    public static func splitByTime(_ data: RatingsData, testFraction: Double) throws -> ([Rating], [Rating]) {
        guard data.timestamps.count == data.ratings.count else {
            throw RatingsError("--split time needs timestamps: use a MovieLens file (ratings.csv, ratings.dat, u.data)")
        }
        let order = data.ratings.indices.sorted { (data.timestamps[$0], $0) < (data.timestamps[$1], $1) }
        let testCount = Int((Double(order.count) * testFraction).rounded())
        let cut = order.count - testCount
        return (order[..<cut].map { data.ratings[$0] }, order[cut...].map { data.ratings[$0] })
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

    /// RMSE and MAE of the baselines a rating model must beat: random scores (uniform over the rating
    /// range) and the global mean.
    public static func ratingBaselines(train: [Rating], test: [Rating], seed: UInt64) -> [(String, (rmse: Double, mae: Double))] {
        let mean = Float(train.reduce(0.0) { $0 + Double($1.value) } / Double(max(train.count, 1)))
        let lo = train.map(\.value).min() ?? 0, hi = train.map(\.value).max() ?? 5
        let random = rmse(test) { u, i in
            var g = SplitMix64(seed: seed ^ UInt64(bitPattern: Int64(u &* 1_000_003 &+ i)))
            return lo + (hi - lo) * Float(g.next() >> 40) / Float(1 << 24)
        }
        return [("random", random), ("global mean", rmse(test) { _, _ in mean })]
    }
}
