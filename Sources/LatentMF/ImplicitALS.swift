import Foundation
import LatentVectors

/// Weighted ALS for implicit feedback (Hu, Koren, Volinsky 2008), each least-squares problem solved
/// approximately with a few conjugate-gradient steps warm-started from the previous factors (Takacs,
/// Pilaszy, Tikk 2011), the method of the `implicit` package's CPU ALS.
///
/// Every user-item pair is a training example: preference p = 1 with confidence c = 1 + alpha * r for an
/// observed rating r (or 1 + alpha * log(1 + r / epsilon), `ImplicitConfidence.log`), p = 0 with c = 1
/// for every pair never observed. With the items fixed, user u's factors minimise
///     sum_i c_ui (p_ui - x_u . y_i)^2 + reg |x_u|^2,
/// whose normal equations are (Y^T Y + Y^T (C_u - I) Y + reg I) x_u = Y^T C_u p_u. Y^T Y + reg I is
/// computed once per half-iteration; the rest touches only u's observed items, so one CG step costs
/// O(k^2 + n_u k). Users are solved in parallel (`ParallelRows`), then items the same way.
public enum ImplicitALS {
    /// The objective above summed over every user-item pair (dense: for tests on small data).
    public static func objective(_ model: Model, confidence: InteractionMatrix, regularization reg: Float) -> Double {
        let k = model.factors
        var loss = 0.0
        for u in 0..<model.userCount {
            var observed: [Int32: Float] = [:]
            for n in confidence.range(of: u) { observed[confidence.columns[n]] = confidence.values[n] }
            for i in 0..<model.itemCount {
                var s = 0.0
                for f in 0..<k { s += Double(model.userFactors[u * k + f]) * Double(model.itemFactors[i * k + f]) }
                let (p, c) = observed[Int32(i)].map { (1.0, Double($0)) } ?? (0.0, 1.0)
                loss += c * (p - s) * (p - s)
            }
        }
        let norms = (model.userFactors + model.itemFactors).reduce(0.0) { $0 + Double($1) * Double($1) }
        return loss + Double(reg) * norms
    }

    /// Confidences from ratings: `1 + alpha * r` or `1 + alpha * log(1 + r / epsilon)`.
    public static func confidences(_ ratings: InteractionMatrix, _ p: TrainingParameters) -> InteractionMatrix {
        let alpha = p.alpha, epsilon = p.logEpsilon
        switch p.confidence {
        case .linear: return ratings.mapValues { 1 + alpha * $0 }
        case .log: return ratings.mapValues { 1 + alpha * log1pf(max($0, 0) / epsilon) }
        }
    }

    /// Y^T Y + reg I for the k-column rows of `y`, in double precision summed per thread.
    static func gram(_ y: [Float], rows: Int, k: Int, regularization reg: Float, threads: Int) -> [Float] {
        let parts = ParallelRows.threadCount(threads)
        var partial = [Double](repeating: 0, count: parts * k * k)
        partial.withUnsafeMutableBufferPointer { out in
            // Invariant: thread t writes only partial[t*k*k ..< (t+1)*k*k].
            let base = out.baseAddress!
            y.withUnsafeBufferPointer { yb in
                ParallelRows.run(count: rows, threads: threads, chunk: 256) { thread, range in
                    let g = base + thread * k * k
                    for r in range {
                        let row = yb.baseAddress! + r * k
                        for a in 0..<k {
                            let ya = Double(row[a])
                            if ya == 0 { continue }
                            for b in a..<k { g[a * k + b] += ya * Double(row[b]) }
                        }
                    }
                }
            }
        }
        var out = [Float](repeating: 0, count: k * k)
        for a in 0..<k {
            for b in a..<k {
                var s = 0.0
                for t in 0..<parts { s += partial[t * k * k + a * k + b] }
                out[a * k + b] = Float(s)
                out[b * k + a] = Float(s)
            }
            out[a * k + a] += reg
        }
        return out
    }

    /// Updates the rows of `x` (one per row of `confidence`) with `cgSteps` conjugate-gradient steps each,
    /// the columns' factors `y` fixed.
    static func solve(_ x: inout [Float], fixed y: [Float], confidence: InteractionMatrix, k: Int,
                      regularization reg: Float, cgSteps: Int, threads: Int) {
        let yty = gram(y, rows: confidence.columnCount, k: k, regularization: reg, threads: threads)
        let scratchThreads = ParallelRows.threadCount(threads)
        // Per thread: r, p, Ap (k floats each).
        var scratch = [Float](repeating: 0, count: scratchThreads * 3 * k)
        x.withUnsafeMutableBufferPointer { xb in
            scratch.withUnsafeMutableBufferPointer { sb in
                yty.withUnsafeBufferPointer { gb in
                    y.withUnsafeBufferPointer { yb in
                        confidence.columns.withUnsafeBufferPointer { cols in
                            confidence.values.withUnsafeBufferPointer { vals in
                                // Invariants: row u writes only x[u*k ..< (u+1)*k]; thread t uses only its
                                // own 3k scratch floats; y, yty, cols and vals are read-only here.
                                let X = xb.baseAddress!, Y = yb.baseAddress!, G = gb.baseAddress!
                                let S = sb.baseAddress!
                                ParallelRows.run(count: confidence.rows, threads: threads) { thread, rows in
                                    let r = S + thread * 3 * k, p = r + k, ap = p + k
                                    for u in rows {
                                        let range = confidence.range(of: u)
                                        let xu = X + u * k
                                        // r = Y^T C_u p_u - (Y^T C_u Y + reg I) x_u
                                        for a in 0..<k { r[a] = -DistanceKernels.dot(G + a * k, xu, k) }
                                        for n in range {
                                            let yi = Y + Int(cols[n]) * k, c = vals[n]
                                            FactorUpdate.axpy(c - (c - 1) * DistanceKernels.dot(yi, xu, k), yi, r, k)
                                        }
                                        p.update(from: r, count: k)
                                        var rsOld = DistanceKernels.dot(r, r, k)
                                        if rsOld < 1e-20 { continue }
                                        for _ in 0..<cgSteps {
                                            for a in 0..<k { ap[a] = DistanceKernels.dot(G + a * k, p, k) }
                                            for n in range {
                                                let yi = Y + Int(cols[n]) * k
                                                FactorUpdate.axpy((vals[n] - 1) * DistanceKernels.dot(yi, p, k), yi, ap, k)
                                            }
                                            let pap = DistanceKernels.dot(p, ap, k)
                                            guard pap > 0 else { break }
                                            let step = rsOld / pap
                                            FactorUpdate.axpy(step, p, xu, k)
                                            FactorUpdate.axpy(-step, ap, r, k)
                                            let rsNew = DistanceKernels.dot(r, r, k)
                                            if rsNew < 1e-20 { break }
                                            let beta = rsNew / rsOld
                                            for a in 0..<k { p[a] = r[a] + beta * p[a] }
                                            rsOld = rsNew
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Trains on `ratings` (indexes below `users` and `items`); `onIteration(iteration, model)` runs after
    /// each full iteration (users, then items).
    public static func train(_ ratings: [Rating], users: Int, items: Int, _ p: TrainingParameters,
                             onIteration: (Int, Model) -> Void = { _, _ in }) -> Model {
        let k = p.factors
        let byUser = confidences(InteractionMatrix(ratings, users: users, items: items, byUser: true), p)
        let byItem = confidences(InteractionMatrix(ratings, users: users, items: items, byUser: false), p)
        var rng = SplitMix64(seed: p.seed)
        // Small positive starting factors (as the implicit package starts): every score starts near 0.
        let scale = 0.01 as Float
        var model = Model(factors: k,
                          userFactors: (0..<(users * k)).map { _ in Float(rng.next() >> 40) / Float(1 << 24) * scale },
                          itemFactors: (0..<(items * k)).map { _ in Float(rng.next() >> 40) / Float(1 << 24) * scale },
                          userBias: [Float](repeating: 0, count: users), itemBias: [Float](repeating: 0, count: items),
                          globalMean: 0, biased: false)
        for iteration in 1...max(1, p.epochs) {
            solve(&model.userFactors, fixed: model.itemFactors, confidence: byUser, k: k, regularization: p.regularization,
                  cgSteps: p.cgSteps, threads: p.threads)
            solve(&model.itemFactors, fixed: model.userFactors, confidence: byItem, k: k, regularization: p.regularization,
                  cgSteps: p.cgSteps, threads: p.threads)
            onIteration(iteration, model)
        }
        return model
    }
}
