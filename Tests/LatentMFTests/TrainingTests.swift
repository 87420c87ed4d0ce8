import Foundation
@testable import LatentMF
import LatentVectors
import XCTest

final class TrainingTests: XCTestCase {
    private func sample() throws -> RatingsData {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../docs/examples/ml-latest-small/ratings.csv").path
        return try RatingsReader.read(path: path)
    }

    private func beatsGlobalMean(_ p: TrainingParameters) throws -> (Double, Double) {
        let data = try sample()
        let (train, test) = Evaluation.split(data.ratings, testFraction: 0.2, seed: 7)
        let model = MatrixFactorization.train(train, users: data.userCount, items: data.itemCount, p)
        let mean = Float(train.reduce(0.0) { $0 + Double($1.value) } / Double(train.count))
        let baseline = Evaluation.rmse(test) { _, _ in mean }.rmse
        let rmse = Evaluation.rmse(test) { model.predict(user: $0, item: $1) }.rmse
        return (rmse, baseline)
    }

    func testBiasedSGDBeatsTheGlobalMean() throws {
        var p = TrainingParameters()
        p.biased = true
        p.epochs = 20
        let (rmse, baseline) = try beatsGlobalMean(p)
        XCTAssertLessThan(rmse, baseline - 0.08, "SGD \(rmse) vs global mean \(baseline)")
    }

    func testALSBeatsTheGlobalMean() throws {
        var p = TrainingParameters()
        p.method = .als
        p.epochs = 8
        p.regularization = 0.1
        let (rmse, baseline) = try beatsGlobalMean(p)
        XCTAssertLessThan(rmse, baseline - 0.05, "ALS \(rmse) vs global mean \(baseline)")
    }

    /// SVD++ with its defaults predicts ratings better than biased SGD with the same factors and epochs:
    /// what the implicit "which items did the user rate" term adds.
    func testSVDPlusPlusBeatsBiasedSGD() throws {
        var p = TrainingParameters()
        p.method = .svdpp
        p.factors = 20
        p.epochs = 20
        p.learningRate = 0.007
        p.regularization = 0.04
        let (svdpp, baseline) = try beatsGlobalMean(p)
        var sgd = p
        sgd.method = .sgd
        sgd.biased = true
        let (biased, _) = try beatsGlobalMean(sgd)
        XCTAssertLessThan(svdpp, biased - 0.002, "SVD++ \(svdpp) vs biased SGD \(biased) (global mean \(baseline))")
        XCTAssertLessThan(svdpp, 0.88)
    }

    /// With biases folded into the serving vectors, inner products rank a user's items exactly as the
    /// model's predicted ratings do.
    func testFoldedVectorsRankAsPredictedRatings() {
        var rng = SplitMix64(seed: 3)
        for _ in 0..<5 {
            let users = 20, items = 50, k = 6
            let model = Model(factors: k,
                              userFactors: (0..<(users * k)).map { _ in rng.gaussian(sd: 1) },
                              itemFactors: (0..<(items * k)).map { _ in rng.gaussian(sd: 1) },
                              userBias: (0..<users).map { _ in rng.gaussian(sd: 1) },
                              itemBias: (0..<items).map { _ in rng.gaussian(sd: 1) },
                              globalMean: 3.5, biased: true)
            let (u, i) = model.servingVectors()
            XCTAssertEqual(u.columns, k + 1)
            for user in 0..<users {
                let byPrediction = (0..<items).sorted { model.predict(user: user, item: $0) > model.predict(user: user, item: $1) }
                let ip = { (item: Int) -> Float in zip(u.row(user), i.row(item)).reduce(0) { $0 + $1.0 * $1.1 } }
                let byInnerProduct = (0..<items).sorted { ip($0) > ip($1) }
                XCTAssertEqual(byPrediction, byInnerProduct)
            }
        }
    }

    func testCholeskySolvesASymmetricSystem() {
        let a: [Double] = [4, 2, 0.6, 2, 5, 1, 0.6, 1, 3]
        let x = Cholesky.solveClampingPivots(a, [1, 2, 3], 3)
        for r in 0..<3 {
            XCTAssertEqual((0..<3).reduce(0.0) { $0 + a[r * 3 + $1] * x[$1] }, [1.0, 2, 3][r], accuracy: 1e-9)
        }
    }

    func testExportWritesTheLoadableDirectory() throws {
        var data = RatingsData()
        data.userIds = ["u1", "u2"]
        data.itemIds = ["a", "b", "c"]
        data.ratings = [Rating(user: 0, item: 0, value: 5), Rating(user: 1, item: 2, value: 1)]
        var p = TrainingParameters()
        p.biased = true
        p.factors = 4
        let model = MatrixFactorization.train(data.ratings, users: 2, items: 3, p)
        let dir = NSTemporaryDirectory() + "mf-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try ModelExport.write(model, data: data, parameters: p, metrics: ["rmse": 1.0], to: dir)
        XCTAssertEqual(try NPY.read(path: dir + "/users.npy").columns, 5)
        XCTAssertEqual(try NPY.read(path: dir + "/items.npy").rows, 3)
        XCTAssertEqual(try String(contentsOfFile: dir + "/items.ids", encoding: .utf8), "a\nb\nc\n")
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/model.json"))) as? [String: Any]
        XCTAssertEqual(json?["method"] as? String, "sgd")
        XCTAssertEqual(json?["biased"] as? Bool, true)
        XCTAssertNotNil(json?["serving_vectors"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir).sorted(),
                       ["items.ids", "items.npy", "model.json", "users.ids", "users.npy"])
    }
}
