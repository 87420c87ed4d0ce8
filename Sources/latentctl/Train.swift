import ArgumentParser
import Foundation
import LatentMF

extension TrainingMethod: ExpressibleByArgument {}
extension RatingsFormat: ExpressibleByArgument {}
extension ImplicitConfidence: ExpressibleByArgument {}

/// How ratings are divided into training and held-out data for the report.
enum SplitKind: String, ExpressibleByArgument, CaseIterable {
    /// A seeded shuffle: `--test-fraction` of all ratings held out (or `--folds`).
    case random
    /// Per user: `--holdout` ratings of every user with more than that many.
    case user
    /// The latest `--test-fraction` of the ratings by timestamp.
    case time
}

/// The split options shared by `train` and `split`.
struct SplitOptions: ParsableArguments {
    @Option(help: "random, user (leave --holdout out per user) or time (the latest --test-fraction).")
    var split: SplitKind = .random
    @Option(help: "Fraction of ratings held out (random and time splits).") var testFraction = 0.2
    @Option(help: "Ratings held out per user (user split).") var holdout = 5
    @Option(help: "Cross-validate over N folds instead (random split; reports mean and spread).") var folds: Int?
    @Option(help: "Seed of the split and of training.") var seed: UInt64 = 42

    func validate() throws {
        guard testFraction > 0, testFraction < 1 else { throw ValidationError("--test-fraction must be between 0 and 1") }
        guard holdout >= 1 else { throw ValidationError("--holdout must be at least 1") }
        if let folds {
            guard folds >= 2 else { throw ValidationError("--folds must be at least 2") }
            guard split == .random else { throw ValidationError("--folds works with --split random only") }
        }
    }

    func splits(of data: RatingsData) throws -> [([Rating], [Rating])] {
        switch split {
        case .random:
            return folds.map { Evaluation.folds(data.ratings, k: $0, seed: seed) }
                ?? [Evaluation.split(data.ratings, testFraction: testFraction, seed: seed)]
        case .user: return [Evaluation.leaveOut(data.ratings, perUser: holdout, seed: seed)]
        case .time:
            do { return [try Evaluation.splitByTime(data, testFraction: testFraction)] } catch { throw Failure("latentctl: \(error)") }
        }
    }

    var describe: String {
        switch split {
        case .random: return folds.map { "\($0)-fold cross-validation" } ?? "random hold-out \(testFraction)"
        case .user: return "leave \(holdout) out per user"
        case .time: return "latest \(testFraction) by time"
        }
    }
}

/// `latentctl train`: matrix factorisation of a ratings file into user and item vectors.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Factorise a ratings file (MovieLens or CSV/TSV) into user and item vectors.",
        discussion: """
        Methods: sgd (Funk SVD; --biased adds mean and biases) and als fit rating values; ials (implicit \
        weighted ALS, conjugate gradient) and bpr (Bayesian personalised ranking) learn to rank, which \
        is what a recommender serves. The report ranks every item each held-out user did not rate in \
        training and prints precision, recall, NDCG, MAP, hit rate and coverage at --k beside \
        most-popular and random; RMSE too for sgd and als.
        """)

    @Argument(help: "Ratings file: MovieLens ratings.dat, u.data, ratings.csv, or user,item,rating CSV/TSV.") var ratings: String
    @Option(help: "ml-1m, ml-100k, ml-csv or plain (default: detected).") var format: RatingsFormat?
    @Option(help: "sgd, als, svdpp, ials or bpr.") var method: TrainingMethod = .sgd
    @Flag(help: "SGD with global mean and user/item biases (Funk SVD).") var biased = false
    @Option(help: "Factors (default 10 sgd/als, 20 svdpp, 32 ials, 64 bpr).") var factors: Int?
    @Option(name: [.long, .customLong("iterations")], help: "Epochs or iterations (default 20 sgd/als/svdpp, 15 ials, 200 bpr).")
    var epochs: Int?
    @Option(help: "Learning rate (default 0.005 sgd, 0.007 svdpp, 0.05 bpr).") var lr: Float?
    @Option(help: "L2 regularisation (default 0.02 sgd, 0.04 svdpp, 0.1 als, 1 ials, 0 bpr).") var reg: Float?
    @Option(help: "ials: confidence 1 + alpha * r (linear) or 1 + alpha * log(1 + r / epsilon).") var alpha: Float = 1
    @Option(help: "ials: linear or log.") var confidence: ImplicitConfidence = .linear
    @Option(help: "ials: epsilon of the log confidence.") var epsilon: Float = 1
    @Option(help: "ials: conjugate-gradient steps per solve.") var cgSteps = 3
    @Option(help: "Threads for ials, bpr and evaluation (0: all cores; bpr with 1 is reproducible).") var threads = 0
    @OptionGroup var splitting: SplitOptions
    @Option(help: "Rank cut-off of the report.") var k = 10
    @Option(help: "Held-out ratings at least this count as relevant.") var relevantMin: Float = 4
    @Option(help: "Evaluate on this ratings file instead of a hold-out (the whole input trains).") var testFile: String?
    @Option(help: "Output directory (users.npy, items.npy, users.ids, items.ids, model.json).") var out: String?
    @Flag(help: "Only train on every rating and write --out (no held-out report; evaluate later with latentctl eval).")
    var noEvaluate = false

    func validate() throws {
        if let factors { guard factors >= 1, factors <= 4095 else { throw ValidationError("--factors must be 1...4095") } }
        if let epochs { guard epochs >= 1 else { throw ValidationError("--epochs must be at least 1") } }
        guard k >= 1 else { throw ValidationError("--k must be at least 1") }
        guard alpha >= 0, alpha.isFinite else { throw ValidationError("--alpha must be a finite number >= 0") }
        guard epsilon > 0 else { throw ValidationError("--epsilon must be above 0") }
        guard cgSteps >= 1 else { throw ValidationError("--cg-steps must be at least 1") }
        guard threads >= 0 else { throw ValidationError("--threads must be 0 (all cores) or more") }
        if noEvaluate && out == nil { throw ValidationError("--no-evaluate needs --out: there would be nothing to show") }
    }

    var parameters: TrainingParameters {
        var p = TrainingParameters()
        p.method = method
        p.biased = biased
        p.factors = factors ?? [.sgd: 10, .als: 10, .svdpp: 20, .ials: 32, .bpr: 64][method]!
        p.epochs = epochs ?? [.sgd: 20, .als: 20, .svdpp: 20, .ials: 15, .bpr: 200][method]!
        p.learningRate = lr ?? [.sgd: 0.005, .als: 0.005, .svdpp: 0.007, .ials: 0.005, .bpr: 0.05][method]!
        // ials and bpr defaults: the best of a small sweep on ml-latest-small (docs/benchmarks.md).
        p.regularization = reg ?? [.sgd: 0.02, .als: 0.1, .svdpp: 0.04, .ials: 1, .bpr: 0][method]!
        p.seed = splitting.seed
        p.alpha = alpha
        p.confidence = confidence
        p.logEpsilon = epsilon
        p.cgSteps = cgSteps
        p.threads = threads
        return p
    }

    func run() throws {
        let data: RatingsData
        do { data = try RatingsReader.read(path: ratings, format: format) } catch { throw Failure("latentctl: \(error)") }
        let p = parameters
        print("\(data.ratings.count) ratings, \(data.userCount) users, \(data.itemCount) items; "
              + "\(method.rawValue)\(biased ? " biased" : ""), k=\(p.factors), \(p.epochs) \(method == .ials ? "iterations" : "epochs")")
        if let testFile { return try evaluateOnFile(testFile, data: data, p) }
        if noEvaluate, let out {
            let start = Date()
            let model = MatrixFactorization.train(data.ratings, users: data.userCount, items: data.itemCount, p)
            let seconds = Date().timeIntervalSince(start)
            try ModelExport.write(model, data: data, parameters: p, metrics: ["evaluated_on": "not evaluated (--no-evaluate)"], to: out)
            print(String(format: "trained in %.3f s; wrote %@", seconds, out))
            return
        }

        let splits = try splitting.splits(of: data)
        var results: [RankingMetrics] = []
        var errors: [(rmse: Double, mae: Double)] = []
        var seconds: [Double] = []
        for (n, (train, test)) in splits.enumerated() {
            let bar = ProgressBar(title: splits.count > 1 ? "fold \(n + 1)" : "training", total: p.epochs)
            let start = Date()
            var evaluating = 0.0
            let model = MatrixFactorization.train(train, users: data.userCount, items: data.itemCount, p) { epoch, model in
                if isatty(STDOUT_FILENO) != 0 { bar.update(fraction: Double(epoch) / Double(p.epochs)) }
                guard splits.count == 1 else { return }
                // Per-epoch figures on the held-out split (their cost is not counted as training time).
                let t0 = Date()
                let ranked = RankingEvaluation.evaluate(model, train: train, test: test, k: k, relevantMin: relevantMin, threads: threads)
                var line = String(format: "epoch %3d: precision@%d %.4f  NDCG@%d %.4f", epoch, k, ranked.precision, k, ranked.ndcg)
                if method.predictsRatings {
                    line += String(format: "  train RMSE %.4f  test RMSE %.4f", Evaluation.rmse(train) { model.predict(user: $0, item: $1) }.rmse,
                                   Evaluation.rmse(test) { model.predict(user: $0, item: $1) }.rmse)
                }
                print((isatty(STDOUT_FILENO) != 0 ? "\r" : "") + line)
                evaluating += Date().timeIntervalSince(t0)
            }
            seconds.append(Date().timeIntervalSince(start) - evaluating)
            results.append(RankingEvaluation.evaluate(model, train: train, test: test, k: k, relevantMin: relevantMin, threads: threads))
            errors.append(Evaluation.rmse(test) { model.predict(user: $0, item: $1) })
            if splits.count > 1 {
                print(String(format: "fold %d: precision@%d %.4f  NDCG@%d %.4f", n + 1, k, results.last!.precision, k, results.last!.ndcg))
            }
        }
        let trainSeconds = seconds.reduce(0, +) / Double(seconds.count)
        print(String(format: "\nmodel (%@; %.2f s training per %@):", splitting.describe, trainSeconds, splits.count > 1 ? "fold" : "split"))
        var line = "  " + RankingReport.line(results, k: k)
        if method.predictsRatings {
            line += "  " + RankingReport.summary("RMSE", errors.map(\.rmse)) + "  " + RankingReport.summary("MAE", errors.map(\.mae))
        }
        print(line)
        print("baselines (same \(splits.count > 1 ? "folds" : "split"), same evaluator):")
        var baselineRuns: [String: [RankingMetrics]] = [:]
        for (train, test) in splits {
            for (name, m) in RankingEvaluation.baselines(train: train, test: test, users: data.userCount, items: data.itemCount,
                                                         k: k, relevantMin: relevantMin, seed: splitting.seed) {
                baselineRuns[name, default: []].append(m)
            }
        }
        for name in ["most popular", "random"] { print(String(format: "  %-13@ ", name) + RankingReport.line(baselineRuns[name]!, k: k)) }
        if method.predictsRatings {
            for (name, e) in Evaluation.ratingBaselines(train: splits[0].0, test: splits[0].1, seed: splitting.seed) {
                print(String(format: "  %-13@ RMSE %.4f  MAE %.4f", name, e.rmse, e.mae))
            }
        }
        guard let out else { return }
        // The exported model is trained on every rating.
        let final = MatrixFactorization.train(data.ratings, users: data.userCount, items: data.itemCount, p)
        let mean = { (f: (RankingMetrics) -> Double) in results.map(f).reduce(0, +) / Double(results.count) }
        var metrics: [String: Any] = [
            "k": k, "relevant_min": relevantMin, "precision_at_k": mean(\.precision), "recall_at_k": mean(\.recall),
            "ndcg_at_k": mean(\.ndcg), "map_at_k": mean(\.map), "hit_rate": mean(\.hitRate), "coverage": mean(\.coverage),
            "evaluated_on": splitting.describe,
            "most_popular_precision_at_k": baselineRuns["most popular"]!.map(\.precision).reduce(0, +) / Double(splits.count),
        ]
        if method.predictsRatings {
            metrics["rmse"] = errors.map(\.rmse).reduce(0, +) / Double(errors.count)
            metrics["mae"] = errors.map(\.mae).reduce(0, +) / Double(errors.count)
        }
        try ModelExport.write(final, data: data, parameters: p, metrics: metrics, to: out)
        let vectors = final.servingVectors()
        print("wrote \(out): users.npy \(data.userCount)x\(vectors.users.columns), items.npy \(data.itemCount)x\(vectors.items.columns)")
    }

    private func evaluateOnFile(_ testFile: String, data: RatingsData, _ p: TrainingParameters) throws {
        let test: RatingsData
        do { test = try RatingsReader.read(path: testFile) } catch { throw Failure("latentctl: \(error)") }
        let mapped = RatingsReader.ratings(of: test, in: data)
        let start = Date()
        let model = MatrixFactorization.train(data.ratings, users: data.userCount, items: data.itemCount, p)
        let seconds = Date().timeIntervalSince(start)
        let ranked = RankingEvaluation.evaluate(model, train: data.ratings, test: mapped, k: k, relevantMin: relevantMin, threads: threads)
        var line = String(format: "test file: train %.3f s  ", seconds) + RankingReport.line([ranked], k: k)
        if method.predictsRatings {
            let err = Evaluation.rmse(mapped) { model.predictAllowingUnknown(user: $0, item: $1) }
            line += String(format: "  RMSE %.4f  MAE %.4f", err.rmse, err.mae)
        }
        print(line)
    }
}

/// One line of ranking figures, with the spread over folds when there are several.
enum RankingReport {
    static func summary(_ name: String, _ values: [Double]) -> String {
        let mean = values.reduce(0, +) / Double(max(values.count, 1))
        guard values.count > 1 else { return String(format: "%@ %.4f", name, mean) }
        let sd = (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count)).squareRoot()
        return String(format: "%@ %.4f (+/- %.4f)", name, mean, sd)
    }

    static func line(_ runs: [RankingMetrics], k: Int) -> String {
        [summary("precision@\(k)", runs.map(\.precision)), summary("recall@\(k)", runs.map(\.recall)),
         summary("NDCG@\(k)", runs.map(\.ndcg)), summary("MAP@\(k)", runs.map(\.map)),
         summary("hit rate", runs.map(\.hitRate)), summary("coverage", runs.map(\.coverage))].joined(separator: "  ")
    }
}
