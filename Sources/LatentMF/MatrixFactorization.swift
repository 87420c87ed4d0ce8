import CLatentSupport
import Dispatch
import Foundation
import LatentVectors

public enum TrainingMethod: String, CaseIterable, Sendable {
    /// Stochastic gradient descent, the Funk-SVD update; with `biased`, global mean and user/item biases.
    case sgd
    /// Alternating least squares with L2 regularisation; each side solved in parallel, k x k Cholesky.
    case als
    /// Implicit-feedback weighted ALS with conjugate-gradient solves (`ImplicitALS`): for top-N ranking.
    case ials
    /// Bayesian personalised ranking with uniform negative sampling (`BPR`): for top-N ranking.
    case bpr
    /// SVD++ (`SVDPlusPlus`): biased factorisation plus what each user rated at all, for rating prediction.
    case svdpp

    /// Whether the method fits rating values (RMSE means something) or ranks interactions.
    public var predictsRatings: Bool { self == .sgd || self == .als || self == .svdpp }
}

/// How implicit ALS turns a rating r into a confidence.
public enum ImplicitConfidence: String, CaseIterable, Sendable {
    /// 1 + alpha * r
    case linear
    /// 1 + alpha * log(1 + r / epsilon)
    case log
}

public struct TrainingParameters: Sendable {
    public var method: TrainingMethod = .sgd
    public var factors = 10
    public var epochs = 20
    public var learningRate: Float = 0.005
    public var regularization: Float = 0.02
    public var biased = false
    public var seed: UInt64 = 42
    /// Implicit ALS: confidence scaling (see `ImplicitConfidence`), epsilon of the log form, and CG steps
    /// per least-squares solve.
    public var alpha: Float = 1
    public var confidence: ImplicitConfidence = .linear
    public var logEpsilon: Float = 1
    public var cgSteps = 3
    /// Worker threads for ials, bpr and evaluation (0: one per core).
    public var threads = 0

    public init() {}
}

/// A trained model: predicts `mean + bu + bi + p_u . q_i` (biases zero unless biased).
public struct Model: Sendable {
    public let factors: Int
    public var userFactors: [Float]
    public var itemFactors: [Float]
    public var userBias: [Float]
    public var itemBias: [Float]
    public var globalMean: Float
    public let biased: Bool

    public var userCount: Int { userBias.count }
    public var itemCount: Int { itemBias.count }

    /// Like `predict`, for ids the model may not know (index -1): an unknown user or item contributes no
    /// factors and no bias, so a new item gets the mean plus the user's bias (as scikit-surprise does).
    public func predictAllowingUnknown(user u: Int, item i: Int) -> Float {
        if u >= 0 && i >= 0 { return predict(user: u, item: i) }
        return globalMean + (u >= 0 ? userBias[u] : 0) + (i >= 0 ? itemBias[i] : 0)
    }

    /// What orders one user's items: p_u . q_i + b_i (the mean and the user's bias are the same for all).
    public func rankingScore(user u: Int, item i: Int) -> Float {
        var s = itemBias[i]
        for f in 0..<factors { s += userFactors[u * factors + f] * itemFactors[i * factors + f] }
        return s
    }

    public func predict(user u: Int, item i: Int) -> Float {
        var s = globalMean + userBias[u] + itemBias[i]
        for f in 0..<factors { s += userFactors[u * factors + f] * itemFactors[i * factors + f] }
        return s
    }

    /// Serving vectors for inner-product search. With biases folded in (item `[q_i, b_i]`, user `[p_u, 1]`),
    /// `user . item = p_u . q_i + b_i`, which orders one user's items exactly as `predict` does (the
    /// mean and the user's bias are the same for all of that user's items).
    public func servingVectors() -> (users: Matrix, items: Matrix) {
        guard biased else {
            return (Matrix(rows: userCount, columns: factors, values: userFactors),
                    Matrix(rows: itemCount, columns: factors, values: itemFactors))
        }
        let k = factors + 1
        var users = [Float](repeating: 0, count: userCount * k)
        var items = [Float](repeating: 0, count: itemCount * k)
        for u in 0..<userCount {
            for f in 0..<factors { users[u * k + f] = userFactors[u * factors + f] }
            users[u * k + factors] = 1
        }
        for i in 0..<itemCount {
            for f in 0..<factors { items[i * k + f] = itemFactors[i * factors + f] }
            items[i * k + factors] = itemBias[i]
        }
        return (Matrix(rows: userCount, columns: k, values: users), Matrix(rows: itemCount, columns: k, values: items))
    }
}

public enum MatrixFactorization {
    /// Trains on `ratings` (indexes below `users` and `items`). `onEpoch(epoch, model)` runs after each epoch
    /// (for progress and per-epoch test RMSE).
    public static func train(_ ratings: [Rating], users: Int, items: Int, _ p: TrainingParameters,
                             onEpoch: (Int, Model) -> Void = { _, _ in }) -> Model {
        switch p.method {
        case .ials: return ImplicitALS.train(ratings, users: users, items: items, p, onIteration: onEpoch)
        case .bpr: return BPR.train(ratings, users: users, items: items, p, onEpoch: onEpoch)
        case .svdpp: return SVDPlusPlus.train(ratings, users: users, items: items, p, onEpoch: onEpoch)
        case .sgd, .als: break
        }
        var rng = SplitMix64(seed: p.seed)
        let k = p.factors
        let mean = ratings.isEmpty ? 0 : Float(ratings.reduce(0.0) { $0 + Double($1.value) } / Double(ratings.count))
        var model = Model(factors: k,
                          userFactors: (0..<(users * k)).map { _ in rng.gaussian(sd: 0.1) },
                          itemFactors: (0..<(items * k)).map { _ in rng.gaussian(sd: 0.1) },
                          userBias: [Float](repeating: 0, count: users), itemBias: [Float](repeating: 0, count: items),
                          globalMean: (p.biased || p.method == .als) ? mean : 0, biased: p.biased)
        switch p.method {
        case .sgd:
            // The ratings themselves are shuffled each epoch (seeded), so the pass reads them in order.
            var shuffled = ratings
            for epoch in 1...max(1, p.epochs) {
                shuffled.shuffle(using: &rng)
                sgdEpoch(shuffled, model: &model, p)
                onEpoch(epoch, model)
            }
        case .als:
            let byUser = group(ratings, by: \.user, count: users)
            let byItem = group(ratings, by: \.item, count: items)
            for epoch in 1...max(1, p.epochs) {
                model.userFactors = alsSolve(fixed: model.itemFactors, groups: byUser, otherIndex: \.item, mean: mean, k: k, lambda: p.regularization)
                model.itemFactors = alsSolve(fixed: model.userFactors, groups: byItem, otherIndex: \.user, mean: mean, k: k, lambda: p.regularization)
                onEpoch(epoch, model)
            }
        case .ials, .bpr, .svdpp: break
        }
        return model
    }

    /// One pass of the classic update (Funk; scikit-surprise's SVD) over `ratings` in their order: with
    /// e = r - prediction, p_u += lr (e q_i - reg p_u), q_i += lr (e p_u - reg q_i), both from the old values.
    static func sgdEpoch(_ ratings: [Rating], model m: inout Model, _ p: TrainingParameters) {
        let k = m.factors, lr = p.learningRate, reg = p.regularization
        let mean = m.globalMean
        m.userFactors.withUnsafeMutableBufferPointer { P in
            m.itemFactors.withUnsafeMutableBufferPointer { Q in
                m.userBias.withUnsafeMutableBufferPointer { BU in
                    m.itemBias.withUnsafeMutableBufferPointer { BI in
                        ratings.withUnsafeBufferPointer { R in
                            for n in 0..<R.count {
                                // The rows of a rating a few steps ahead are random accesses: ask for them now.
                                if n + 4 < R.count {
                                    let ahead = R[n + 4]
                                    let pa = P.baseAddress! + Int(ahead.user) * k, qa = Q.baseAddress! + Int(ahead.item) * k
                                    var line = 0
                                    while line < k {  // every 64-byte line of both rows
                                        latent_prefetch(pa + line)
                                        latent_prefetch(qa + line)
                                        line += 16
                                    }
                                }
                                let r = R[n]
                                let u = Int(r.user), i = Int(r.item)
                                let e = FactorUpdate.sgdRating(P.baseAddress! + u * k, Q.baseAddress! + i * k, k, target: r.value,
                                                               offset: mean + BU[u] + BI[i], learningRate: lr, regularization: reg)
                                if p.biased {
                                    BU[u] += lr * (e - reg * BU[u])
                                    BI[i] += lr * (e - reg * BI[i])
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    static func group(_ ratings: [Rating], by key: KeyPath<Rating, Int32>, count: Int) -> [[Rating]] {
        var groups = [[Rating]](repeating: [], count: count)
        for r in ratings { groups[Int(r[keyPath: key])].append(r) }
        return groups
    }

    /// Solves every row of one side with the other side fixed:
    /// (Y_u^T Y_u + lambda n_u I) x_u = Y_u^T (r_u - mean), rows in parallel (Dispatch concurrentPerform).
    static func alsSolve(fixed: [Float], groups: [[Rating]], otherIndex: KeyPath<Rating, Int32>, mean: Float,
                         k: Int, lambda: Float) -> [Float] {
        var out = [Float](repeating: 0, count: groups.count * k)
        out.withUnsafeMutableBufferPointer { o in
            let base = o.baseAddress!
            fixed.withUnsafeBufferPointer { y in
                DispatchQueue.concurrentPerform(iterations: groups.count) { row in
                    let g = groups[row]
                    guard !g.isEmpty else { return }
                    var a = [Double](repeating: 0, count: k * k)
                    var b = [Double](repeating: 0, count: k)
                    for r in g {
                        let yv = y.baseAddress! + Int(r[keyPath: otherIndex]) * k
                        let target = Double(r.value - mean)
                        for i in 0..<k {
                            b[i] += Double(yv[i]) * target
                            for j in 0...i { a[i * k + j] += Double(yv[i]) * Double(yv[j]) }
                        }
                    }
                    let ridge = Double(lambda) * Double(g.count)
                    for i in 0..<k {
                        a[i * k + i] += ridge
                        for j in 0..<i { a[j * k + i] = a[i * k + j] }
                    }
                    let x = Cholesky.solveClampingPivots(a, b, k)
                    for i in 0..<k { base[row * k + i] = Float(x[i]) }
                }
            }
        }
        return out
    }
}
