import ArgumentParser
import Foundation
import LatentMF

extension TrainingMethod: ExpressibleByArgument {}
extension RatingsFormat: ExpressibleByArgument {}

/// `latentctl train`: matrix factorisation of a ratings file into user and item vectors.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Factorise a ratings file (MovieLens or CSV/TSV) into user and item vectors.")

    @Argument(help: "Ratings file: MovieLens ratings.dat, u.data, ratings.csv, or user,item,rating CSV/TSV.") var ratings: String
    @Option(help: "ml-1m, ml-100k, ml-csv or plain (default: detected).") var format: RatingsFormat?
    @Option(help: "sgd or als.") var method: TrainingMethod = .sgd
    @Flag(help: "SGD with global mean and user/item biases (Funk SVD).") var biased = false
    @Option var factors = 10
    @Option var epochs = 20
    @Option(help: "SGD learning rate.") var lr: Float = 0.005
    @Option(help: "L2 regularisation (default 0.02 for SGD, 0.1 for ALS).") var reg: Float?
    @Option var seed: UInt64 = 42
    @Option(help: "Fraction of ratings held out for testing.") var testFraction = 0.2
    @Option(help: "Cross-validate over N folds instead (reports mean and spread).") var folds: Int?
    @Option(help: "Evaluate on this ratings file instead of a hold-out (the whole input trains; RMSE/MAE only).")
    var testFile: String?
    @Option(help: "Output directory (users.npy, items.npy, users.ids, items.ids, model.json).") var out: String?

    func validate() throws {
        guard factors >= 1, factors <= 4095 else { throw ValidationError("--factors must be 1...4095") }
        guard epochs >= 1 else { throw ValidationError("--epochs must be at least 1") }
        guard testFraction > 0, testFraction < 1 else { throw ValidationError("--test-fraction must be between 0 and 1") }
        if let folds, folds < 2 { throw ValidationError("--folds must be at least 2") }
    }

    func run() throws {
        let data: RatingsData
        do { data = try RatingsReader.read(path: ratings, format: format) } catch { throw Failure("latentctl: \(error)") }
        var p = TrainingParameters()
        p.method = method
        p.biased = biased
        p.factors = factors
        p.epochs = epochs
        p.learningRate = lr
        p.regularization = reg ?? (method == .als ? 0.1 : 0.02)
        p.seed = seed
        print("\(data.ratings.count) ratings, \(data.userCount) users, \(data.itemCount) items; \(method.rawValue)\(biased ? " biased" : ""), k=\(factors)")

        if let testFile {
            let test: RatingsData
            do { test = try RatingsReader.read(path: testFile) } catch { throw Failure("latentctl: \(error)") }
            let mapped = RatingsReader.ratings(of: test, in: data)
            let start = Date()
            let model = MatrixFactorization.train(data.ratings, users: data.userCount, items: data.itemCount, p)
            let seconds = Date().timeIntervalSince(start)
            let err = Evaluation.rmse(mapped) { model.predictAllowingUnknown(user: $0, item: $1) }
            print(String(format: "test file: RMSE %.4f  MAE %.4f  train %.3f s (%.4f s per epoch)", err.rmse, err.mae, seconds, seconds / Double(epochs)))
            return
        }
        let splits = folds.map { Evaluation.folds(data.ratings, k: $0, seed: seed) }
            ?? [Evaluation.split(data.ratings, testFraction: testFraction, seed: seed)]
        var results: [Metrics] = []
        var seconds: [Double] = []
        for (n, (train, test)) in splits.enumerated() {
            let bar = ProgressBar(title: splits.count > 1 ? "fold \(n + 1)" : "training", total: epochs)
            let start = Date()
            let model = MatrixFactorization.train(train, users: data.userCount, items: data.itemCount, p) { epoch, model in
                if isatty(STDOUT_FILENO) != 0 { bar.update(fraction: Double(epoch) / Double(epochs)) }
                if splits.count == 1 {
                    let trainErr = Evaluation.rmse(train) { model.predict(user: $0, item: $1) }.rmse
                    let testErr = Evaluation.rmse(test) { model.predict(user: $0, item: $1) }.rmse
                    print(String(format: "%@epoch %2d: train RMSE %.4f  test RMSE %.4f", isatty(STDOUT_FILENO) != 0 ? "\r" : "", epoch, trainErr, testErr))
                }
            }
            seconds.append(Date().timeIntervalSince(start))
            results.append(Evaluation.evaluate(model, train: train, test: test))
            if splits.count > 1 { print(String(format: "fold %d: RMSE %.4f  MAE %.4f", n + 1, results.last!.rmse, results.last!.mae)) }
        }
        func summary(_ name: String, _ f: (Metrics) -> Double) -> String {
            let v = results.map(f)
            let mean = v.reduce(0, +) / Double(v.count)
            let sd = (v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(v.count)).squareRoot()
            return results.count > 1 ? String(format: "%@ %.4f (+/- %.4f)", name, mean, sd) : String(format: "%@ %.4f", name, mean)
        }
        print(String(format: "\nmodel (%.2f s per %@, %.3f s per epoch):", seconds.reduce(0, +) / Double(seconds.count),
                     results.count > 1 ? "fold" : "training", seconds.reduce(0, +) / Double(seconds.count * epochs)))
        print("  " + [summary("RMSE", \.rmse), summary("MAE", \.mae), summary("precision@10", \.precisionAt10),
                      summary("recall@10", \.recallAt10), summary("NDCG@10", \.ndcgAt10)].joined(separator: "  "))
        let (train0, test0) = splits[0]
        print("baselines (on \(splits.count > 1 ? "fold 1" : "the same split")):")
        for (name, m) in Evaluation.baselines(train: train0, test: test0, items: data.itemCount, seed: seed) {
            print(String(format: "  %-13@ RMSE %.4f  MAE %.4f  precision@10 %.4f  recall@10 %.4f  NDCG@10 %.4f",
                         name, m.rmse, m.mae, m.precisionAt10, m.recallAt10, m.ndcgAt10))
        }
        guard let out else { return }
        // The exported model is trained on every rating.
        let final = MatrixFactorization.train(data.ratings, users: data.userCount, items: data.itemCount, p)
        let mean = { (f: (Metrics) -> Double) in results.map(f).reduce(0, +) / Double(results.count) }
        try ModelExport.write(final, data: data, parameters: p, metrics: [
            "rmse": mean(\.rmse), "mae": mean(\.mae), "precision_at_10": mean(\.precisionAt10),
            "recall_at_10": mean(\.recallAt10), "ndcg_at_10": mean(\.ndcgAt10),
            "evaluated_on": folds.map { "\($0)-fold cross-validation" } ?? "hold-out \(testFraction)",
        ], to: out)
        print("wrote \(out): users.npy \(data.userCount)x\(final.servingVectors().users.columns), items.npy \(data.itemCount)x\(final.servingVectors().items.columns)")
    }
}
