import Foundation
@testable import LatentMF
import LatentVectors
import XCTest

/// Implicit ALS (conjugate gradient), BPR and the ranking evaluator.
final class ImplicitTrainingTests: XCTestCase {
    private func randomInteractions(users: Int, items: Int, perUser: Int, seed: UInt64) -> [Rating] {
        var g = SplitMix64(seed: seed)
        var out: [Rating] = []
        for u in 0..<users {
            var chosen = Set<Int32>()
            while chosen.count < perUser { chosen.insert(Int32(g.next() % UInt64(items))) }
            for i in chosen.sorted() { out.append(Rating(user: Int32(u), item: i, value: Float(1 + g.next() % 5))) }
        }
        return out
    }

    /// With as many CG steps as factors, the solve of one side equals the dense solution of its normal
    /// equations (Y^T C_u Y + reg I) x_u = Y^T C_u p_u.
    func testConjugateGradientMatchesADenseSolve() {
        let users = 12, items = 20, k = 5
        let ratings = randomInteractions(users: users, items: items, perUser: 6, seed: 3)
        var p = TrainingParameters()
        p.alpha = 2
        let confidence = ImplicitALS.confidences(InteractionMatrix(ratings, users: users, items: items, byUser: true), p)
        var g = SplitMix64(seed: 9)
        let y = (0..<(items * k)).map { _ in Float(g.next() >> 40) / Float(1 << 24) - 0.5 }
        var x = [Float](repeating: 0, count: users * k)
        ImplicitALS.solve(&x, fixed: y, confidence: confidence, k: k, regularization: 0.1, cgSteps: k, threads: 2)
        for u in 0..<users {
            var a = [Double](repeating: 0, count: k * k), b = [Double](repeating: 0, count: k)
            var c = [Double](repeating: 1, count: items), pref = [Double](repeating: 0, count: items)
            for n in confidence.range(of: u) {
                c[Int(confidence.columns[n])] = Double(confidence.values[n])
                pref[Int(confidence.columns[n])] = 1
            }
            for i in 0..<items {
                for r in 0..<k {
                    b[r] += c[i] * pref[i] * Double(y[i * k + r])
                    for s in 0..<k { a[r * k + s] += c[i] * Double(y[i * k + r]) * Double(y[i * k + s]) }
                }
            }
            for r in 0..<k { a[r * k + r] += 0.1 }
            let exact = Cholesky.solveClampingPivots(a, b, k)
            for r in 0..<k {
                XCTAssertEqual(Double(x[u * k + r]), exact[r], accuracy: 1e-3 * max(1, abs(exact[r])), "user \(u) factor \(r)")
            }
        }
    }

    func testIALSObjectiveDecreasesEveryIteration() {
        let users = 30, items = 25
        let ratings = randomInteractions(users: users, items: items, perUser: 5, seed: 11)
        var p = TrainingParameters()
        p.method = .ials
        p.factors = 6
        p.epochs = 12
        p.alpha = 3
        p.regularization = 0.05
        let confidence = ImplicitALS.confidences(InteractionMatrix(ratings, users: users, items: items, byUser: true), p)
        var losses: [Double] = []
        _ = MatrixFactorization.train(ratings, users: users, items: items, p) { _, model in
            losses.append(ImplicitALS.objective(model, confidence: confidence, regularization: p.regularization))
        }
        XCTAssertEqual(losses.count, 12)
        for t in 1..<losses.count {
            XCTAssertLessThanOrEqual(losses[t], losses[t - 1] * (1 + 1e-6), "iteration \(t + 1): \(losses)")
        }
        XCTAssertLessThan(losses.last!, losses.first! * 0.95, "\(losses)")
    }

    /// Two planted communities: users of group g interact only with items of group g. Before training the
    /// held-out pairs rank at chance; after BPR they rank above the other group's items.
    func testBPRLearnsPlantedCommunities() {
        let users = 200, items = 40
        var g = SplitMix64(seed: 5)
        var train: [Rating] = [], test: [Rating] = []
        for u in 0..<users {
            let group = u % 2
            let own = (0..<items).filter { $0 % 2 == group }.shuffled(using: &g)
            for (n, i) in own.prefix(8).enumerated() {
                let r = Rating(user: Int32(u), item: Int32(i), value: 5)
                if n == 0 { test.append(r) } else { train.append(r) }
            }
        }
        var p = TrainingParameters()
        p.method = .bpr
        p.factors = 8
        p.epochs = 40
        p.learningRate = 0.05
        p.regularization = 0.05
        p.threads = 1
        func auc(_ m: Model) -> Double {
            var above = 0.0, pairs = 0.0
            for r in test {
                let u = Int(r.user)
                let s = m.rankingScore(user: u, item: Int(r.item))
                for j in 0..<items where j % 2 != u % 2 {
                    pairs += 1
                    if s > m.rankingScore(user: u, item: j) { above += 1 }
                }
            }
            return above / pairs
        }
        var first: Double?
        let model = MatrixFactorization.train(train, users: users, items: items, p) { epoch, m in
            if epoch == 1 { first = auc(m) }
        }
        XCTAssertLessThan(first!, 0.8, "one epoch should not have learned the communities yet")
        XCTAssertGreaterThan(auc(model), 0.95, "first epoch \(first!)")
        // Seeded and single-threaded: the same model again.
        let again = MatrixFactorization.train(train, users: users, items: items, p)
        XCTAssertEqual(again.userFactors, model.userFactors)
    }

    /// The evaluator on a case worked by hand (implicit's definitions).
    func testRankingMetricsOnAHandWorkedCase() {
        // User 0 rated item 0 in training; relevant held out: items 1 and 3 (item 4 rated 2: not relevant).
        let train = [Rating(user: 0, item: 0, value: 5), Rating(user: 1, item: 2, value: 5)]
        let test = [Rating(user: 0, item: 1, value: 4), Rating(user: 0, item: 3, value: 5), Rating(user: 0, item: 4, value: 2),
                    Rating(user: 1, item: 0, value: 4)]
        // Scores: item 0 would rank first but is excluded; user 0's top 3 is 2, 3, 1 (item 4 next).
        let scores: [[Float]] = [[9, 1, 5, 3, 0.5], [0, 1, 2, 3, 4]]
        let m = RankingEvaluation.evaluate(train: train, test: test, users: 2, items: 5, k: 3, relevantMin: 4) { u, out in
            for i in 0..<5 { out[i] = scores[u][i] }
        }
        // User 0: hits at ranks 2 and 3 of 3; user 1: top 3 is 4, 3, 1 (2 excluded), relevant item 0 missed.
        XCTAssertEqual(m.users, 2)
        XCTAssertEqual(m.precision, 2.0 / (2 + 1), accuracy: 1e-12)
        XCTAssertEqual(m.recall, (1.0 + 0) / 2, accuracy: 1e-12)
        let idcg0 = 1 + 1 / log2(3.0)
        XCTAssertEqual(m.ndcg, ((1 / log2(3.0) + 1 / log2(4.0)) / idcg0 + 0) / 2, accuracy: 1e-12)
        XCTAssertEqual(m.map, ((1.0 / 2 + 2.0 / 3) / 2 + 0) / 2, accuracy: 1e-12)
        XCTAssertEqual(m.hitRate, 0.5, accuracy: 1e-12)
        XCTAssertEqual(m.coverage, 4.0 / 5, accuracy: 1e-12) // items 1, 2, 3, 4
    }

    func testLeaveOutAndTimeSplits() throws {
        let data = try RatingsReader.parse(Data("""
            userId,movieId,rating,timestamp
            a,x,4,30
            a,y,5,10
            a,z,3,20
            b,x,4,40
            b,y,1,5
            c,x,2,1
            """.utf8))
        let (train, test) = Evaluation.leaveOut(data.ratings, perUser: 1, seed: 1)
        XCTAssertEqual(test.count, 2, "a and b hold one out; c has only one rating")
        XCTAssertEqual(Set(test.map(\.user)), [0, 1])
        XCTAssertEqual(train.count + test.count, 6)
        let (early, late) = try Evaluation.splitByTime(data, testFraction: 0.34)
        XCTAssertEqual(late.map { data.timestamps[data.ratings.firstIndex(of: $0)!] }.sorted(), [30, 40])
        XCTAssertEqual(early.count, 4)
        var plain = data
        plain.timestamps = []
        XCTAssertThrowsError(try Evaluation.splitByTime(plain, testFraction: 0.2)) { XCTAssertTrue("\($0)".contains("timestamps")) }
    }
}
