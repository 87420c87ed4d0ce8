import Foundation
import LatentIndex
import LatentVectors
import XCTest

/// Seeded data, exact answers and recall, shared by the index tests.
extension XCTestCase {
    /// n vectors around `clusters` centres, like real embeddings (pure uniform noise has no structure to find).
    func clustered(_ n: Int, dim: Int, clusters: Int = 50, seed: UInt64) -> [Float] {
        var rng = SeededRandom(seed: seed)
        let centres = (0..<clusters).map { _ in rng.vector(dim) }
        var out: [Float] = []
        out.reserveCapacity(n * dim)
        for _ in 0..<n {
            let c = centres[Int.random(in: 0..<clusters, using: &rng)]
            for d in 0..<dim { out.append(c[d] + 0.15 * Float.random(in: -1...1, using: &rng)) }
        }
        return out
    }

    func exact(_ data: [Float], dim: Int, metric: Metric, query: [Float], k: Int, excluding: Set<UInt32> = []) -> [UInt32] {
        let buffer = VectorBuffer(dimension: dim, initialCapacity: data.count / dim)
        data.withUnsafeBufferPointer { p in
            for i in 0..<(data.count / dim) where !excluding.contains(UInt32(i)) { buffer.set(slot: i, p.baseAddress! + i * dim) }
        }
        return query.withUnsafeBufferPointer {
            FlatIndex.scan($0.baseAddress!, in: buffer, metric: metric, k: k, ranksBefore: { $0 < $1 }).map(\.slot)
        }
    }

    func recall(_ index: VectorIndex, data: [Float], dim: Int, queries: [[Float]], k: Int = 10,
                        params: (Int) -> SearchParameters, excluding: Set<UInt32> = []) -> Double {
        var hits = 0
        for q in queries {
            let truth = Set(exact(data, dim: dim, metric: index.metric, query: q, k: k, excluding: excluding))
            let found = q.withUnsafeBufferPointer { index.search($0.baseAddress!, params(k)) }
            XCTAssertTrue(found.allSatisfy { !excluding.contains($0.slot) }, "a deleted slot was returned")
            XCTAssertEqual(found.map(\.distance), found.map(\.distance).sorted(), "results not best first")
            hits += found.filter { truth.contains($0.slot) }.count
        }
        return Double(hits) / Double(queries.count * k)
    }

    /// The last `q` rows of `all`, as queries drawn from the data's distribution but not indexed.
    func split(_ all: [Float], dim: Int, queries q: Int) -> ([Float], [[Float]]) {
        let n = all.count / dim - q
        return (Array(all[..<(n * dim)]), (0..<q).map { Array(all[((n + $0) * dim)..<((n + $0 + 1) * dim)]) })
    }
}
