import Foundation
import LatentVectors

/// Bayesian personalised ranking (Rendle et al. 2009) with uniform negative sampling: each step draws an
/// observed pair (u, i) uniformly, an item j uniformly among those u has not interacted with, and moves
/// the factors to rank i above j (`FactorUpdate.bprStep`). Items carry a bias, served as the last
/// component (`Model.servingVectors` with `biased`: user [p_u, 1], item [q_i, b_i]).
///
/// Threads: with `threads == 1` training is fully determined by the seed. With more, each thread runs
/// its share of an epoch's steps on the shared factors without locks (Hogwild, Niu et al. 2011): two
/// threads may update the same row at once and one update can be partly lost. Rows are touched sparsely,
/// so this costs little accuracy, but results then vary from run to run. The item bias is the last
/// factor column of an augmented (k + 1)-wide table during training, so one kernel call updates both.
public enum BPR {
    public static func train(_ ratings: [Rating], users: Int, items: Int, _ p: TrainingParameters,
                             onEpoch: (Int, Model) -> Void = { _, _ in }) -> Model {
        let k = p.factors, width = k + 1
        let liked = InteractionMatrix(ratings, users: users, items: items, byUser: true)
        var rng = SplitMix64(seed: p.seed)
        // Users [p_u, 1] and items [q_i, b_i]: p_u . q_i + b_i is the score, one dot product.
        var userRows = [Float](repeating: 0, count: users * width)
        var itemRows = [Float](repeating: 0, count: items * width)
        for u in 0..<users {
            for f in 0..<k { userRows[u * width + f] = (Float(rng.next() >> 40) / Float(1 << 24) - 0.5) / Float(k) }
            userRows[u * width + k] = 1
        }
        for i in 0..<items {
            for f in 0..<k { itemRows[i * width + f] = (Float(rng.next() >> 40) / Float(1 << 24) - 0.5) / Float(k) }
        }
        let threads = ParallelRows.threadCount(p.threads)
        let steps = liked.count
        let seeds = (0..<threads).map { _ in rng.next() }
        // Users with no items can never be sampled; a user who has every item has no negative (skipped).
        for epoch in 1...max(1, p.epochs) {
            userRows.withUnsafeMutableBufferPointer { ub in
                itemRows.withUnsafeMutableBufferPointer { ib in
                    liked.columns.withUnsafeBufferPointer { cols in
                        // Invariant: indices below stay in bounds (u < users, i and j < items); rows may be
                        // written by two threads at once (Hogwild, documented above), never out of range.
                        let U = ub.baseAddress!, I = ib.baseAddress!
                        ParallelRows.run(count: threads, threads: threads, chunk: 1) { _, range in
                            for t in range {
                                var g = SplitMix64(seed: seeds[t] &+ UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15)
                                let share = steps / threads + (t < steps % threads ? 1 : 0)
                                for _ in 0..<share {
                                    let n = Int(g.next() % UInt64(steps))
                                    let i = Int(cols[n])
                                    let u = user(ofInteraction: n, liked)
                                    let userItems = liked.range(of: u).count
                                    guard userItems < items else { continue }
                                    var j = Int(g.next() % UInt64(items))
                                    var tries = 0
                                    while liked.contains(row: u, column: Int32(j)) && tries < 32 {
                                        j = Int(g.next() % UInt64(items))
                                        tries += 1
                                    }
                                    if liked.contains(row: u, column: Int32(j)) { continue }
                                    // The user's constant 1 must stay 1: its "update" is undone after the step.
                                    _ = FactorUpdate.bprStep(U + u * width, I + i * width, I + j * width, width,
                                                             learningRate: p.learningRate, regularization: p.regularization)
                                    U[u * width + k] = 1
                                }
                            }
                        }
                    }
                }
            }
            onEpoch(epoch, model(userRows, itemRows, users: users, items: items, k: k))
        }
        return model(userRows, itemRows, users: users, items: items, k: k)
    }

    /// The user of interaction `n` (binary search of the row offsets).
    @inline(__always)
    static func user(ofInteraction n: Int, _ m: InteractionMatrix) -> Int {
        var lo = 0, hi = m.rows
        // The last row whose offset is <= n.
        while hi - lo > 1 {
            let mid = (lo + hi) / 2
            if m.offsets[mid] <= n { lo = mid } else { hi = mid }
        }
        return lo
    }

    static func model(_ userRows: [Float], _ itemRows: [Float], users: Int, items: Int, k: Int) -> Model {
        let width = k + 1
        var uf = [Float](repeating: 0, count: users * k), itf = [Float](repeating: 0, count: items * k)
        var bias = [Float](repeating: 0, count: items)
        for u in 0..<users { for f in 0..<k { uf[u * k + f] = userRows[u * width + f] } }
        for i in 0..<items {
            for f in 0..<k { itf[i * k + f] = itemRows[i * width + f] }
            bias[i] = itemRows[i * width + k]
        }
        return Model(factors: k, userFactors: uf, itemFactors: itf, userBias: [Float](repeating: 0, count: users),
                     itemBias: bias, globalMean: 0, biased: true)
    }
}
