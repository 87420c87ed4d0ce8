import ArgumentParser
import Foundation
import LatentMF
import LatentVectors

/// `latentctl eval MODEL_DIR TEST --train TRAIN`: ranking quality of an exported model on held-out
/// ratings, beside most-popular and random on the same data.
struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Ranking quality of a trained model (a latentctl train --out directory) on held-out ratings.",
        discussion: """
        Every user of TEST with a rating >= --relevant-min gets the model's top --k among the items they \
        did not rate in TRAIN (the ratings the model was trained on); users and items the model does not \
        know are counted and skipped. Make TRAIN and TEST with latentctl split, train on TRAIN, then eval. \
        Metrics follow the implicit package's ranking_metrics_at_k (precision, NDCG, MAP), plus recall, \
        hit rate and catalogue coverage.
        """)

    @Argument(help: "Model directory: users.npy, items.npy, users.ids, items.ids.") var model: String
    @Argument(help: "Held-out ratings (any format latentctl train reads).") var test: String
    @Option(help: "The ratings the model was trained on: excluded from each user's ranking, and most-popular's counts.")
    var train: String
    @Option(help: "Rank cut-off.") var k = 10
    @Option(help: "Held-out ratings at least this count as relevant.") var relevantMin: Float = 4
    @Option(help: "Threads (0: all cores).") var threads = 0
    @Option(help: "Seed of the random baseline.") var seed: UInt64 = 42

    func validate() throws {
        guard k >= 1 else { throw ValidationError("--k must be at least 1") }
        guard threads >= 0 else { throw ValidationError("--threads must be 0 (all cores) or more") }
    }

    func run() throws {
        let users: LabeledVectors, items: LabeledVectors
        let trainData: RatingsData, testData: RatingsData
        do {
            users = try VectorFiles.read(vectors: model + "/users.npy", ids: model + "/users.ids")
            items = try VectorFiles.read(vectors: model + "/items.npy", ids: model + "/items.ids")
            trainData = try RatingsReader.read(path: train)
            testData = try RatingsReader.read(path: test)
        } catch {
            throw Failure("latentctl: \(error)")
        }
        guard users.matrix.columns == items.matrix.columns else {
            throw Failure("latentctl: \(model): users.npy has \(users.matrix.columns) columns but items.npy \(items.matrix.columns); they must match")
        }
        let userIndex = Dictionary(users.ids.enumerated().map { ($1, Int32($0)) }, uniquingKeysWith: { a, _ in a })
        let itemIndex = Dictionary(items.ids.enumerated().map { ($1, Int32($0)) }, uniquingKeysWith: { a, _ in a })
        func mapped(_ data: RatingsData) -> (ratings: [Rating], unknown: Int) {
            var out: [Rating] = [], unknown = 0
            for r in data.ratings {
                guard let u = userIndex[data.userIds[Int(r.user)]], let i = itemIndex[data.itemIds[Int(r.item)]] else {
                    unknown += 1
                    continue
                }
                out.append(Rating(user: u, item: i, value: r.value))
            }
            return (out, unknown)
        }
        let trainRatings = mapped(trainData), testRatings = mapped(testData)
        print("\(model): \(users.ids.count) users x \(items.ids.count) items, dimension \(users.matrix.columns); "
              + "train \(trainRatings.ratings.count) ratings, test \(testRatings.ratings.count)"
              + (testRatings.unknown + trainRatings.unknown > 0
                 ? " (skipped: \(testRatings.unknown) test and \(trainRatings.unknown) train ratings of users or items the model does not know)" : ""))
        let f = users.matrix.columns, itemCount = items.ids.count
        let metrics = users.matrix.values.withUnsafeBufferPointer { P in
            items.matrix.values.withUnsafeBufferPointer { Q in
                RankingEvaluation.evaluate(train: trainRatings.ratings, test: testRatings.ratings, users: users.ids.count,
                                           items: itemCount, k: k, relevantMin: relevantMin, threads: threads) { u, out in
                    // The exported vectors already fold in any bias: user . item is the score.
                    let p = P.baseAddress! + u * f
                    for i in 0..<itemCount { out[i] = DistanceKernels.dot(p, Q.baseAddress! + i * f, f) }
                }
            }
        }
        print(String(format: "  %-13@ ", "model") + RankingReport.line([metrics], k: k) + "  (\(metrics.users) users)")
        for (name, m) in RankingEvaluation.baselines(train: trainRatings.ratings, test: testRatings.ratings, users: users.ids.count,
                                                     items: itemCount, k: k, relevantMin: relevantMin, seed: seed) {
            print(String(format: "  %-13@ ", name) + RankingReport.line([m], k: k))
        }
    }
}

/// `latentctl split RATINGS --out DIR`: the train/test split `latentctl train` reports on, as files.
struct Split: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Split a ratings file into DIR/train.csv and DIR/test.csv (user,item,rating), for train and eval.")

    @Argument(help: "Ratings file (any format latentctl train reads).") var ratings: String
    @Option(help: "ml-1m, ml-100k, ml-csv or plain (default: detected).") var format: RatingsFormat?
    @OptionGroup var splitting: SplitOptions
    @Option(help: "Output directory.") var out: String

    func validate() throws {
        guard splitting.folds == nil else { throw ValidationError("split writes one split: leave out --folds") }
    }

    func run() throws {
        let data: RatingsData
        do { data = try RatingsReader.read(path: ratings, format: format) } catch { throw Failure("latentctl: \(error)") }
        let (train, test) = try splitting.splits(of: data)[0]
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        func write(_ rows: [Rating], _ name: String) throws {
            var text = "user,item,rating\n"
            for r in rows { text += "\(data.userIds[Int(r.user)]),\(data.itemIds[Int(r.item)]),\(r.value)\n" }
            try text.write(toFile: out + "/" + name, atomically: true, encoding: .utf8)
        }
        try write(train, "train.csv")
        try write(test, "test.csv")
        print("\(splitting.describe): \(out)/train.csv \(train.count) ratings, \(out)/test.csv \(test.count) ratings")
    }
}
