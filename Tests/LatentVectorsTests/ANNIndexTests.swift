import Foundation
import LatentIndex
import LatentVectors
import XCTest

/// Recall of the approximate indexes against exact search on seeded, clustered data.
final class ANNIndexTests: XCTestCase {
    func testHNSWRecallForEveryMetric() {
        let dim = 24, n = 4000
        let (data, queries) = split(clustered(n + 50, dim: dim, seed: 11), dim: dim, queries: 50)
        for metric in Metric.allCases {
            let index = HNSWIndex(metric: metric, dimension: dim, m: 16, efConstruction: 100)
            data.withUnsafeBufferPointer { p in
                _ = index.build(slots: (0..<UInt32(n)).map { $0 }, vectors: p.baseAddress!, threads: 2)
            }
            let r = recall(index, data: data, dim: dim, queries: queries) { SearchParameters(k: $0, ef: 100) }
            XCTAssertGreaterThan(r, 0.95, "HNSW \(metric) recall \(r)")
        }
    }

    /// Parallel builders must not orphan each other's nodes (a node reached through an upper layer before
    /// its layer-0 links exist used to have an early back-link overwritten).
    func testParallelBuildLeavesNoNodeUnreachable() {
        let dim = 32, n = 6000
        let (data, queries) = split(clustered(n + 30, dim: dim, seed: 61), dim: dim, queries: 30)
        var orphans = 0
        for _ in 0..<3 {
            let index = HNSWIndex(metric: .l2, dimension: dim, m: 8, efConstruction: 64)
            data.withUnsafeBufferPointer { p in
                _ = index.build(slots: (0..<UInt32(n)).map { $0 }, vectors: p.baseAddress!, threads: 2)
            }
            orphans += index.unreferencedNodes
            let r = recall(index, data: data, dim: dim, queries: queries) { SearchParameters(k: $0, ef: 400) }
            // Thread interleavings vary the graph: 0.993-1.0 seen (0.993 with a stress run sharing the CPU).
            XCTAssertGreaterThan(r, 0.99)
        }
        // Concurrent inserts can still leave a rare node pruned from every list (0-1 per build here, as
        // insertion order varies; 4 in 3 builds seen once with integration tests sharing the CPU); the race
        // this guards against orphaned 3 to 6 per build of this data, 9 to 18 over the 3.
        XCTAssertLessThanOrEqual(orphans, 6)
    }

    func testHNSWIncrementalInsertsDeletesAndReplacements() {
        let dim = 16, n = 2000
        let (data, queries) = split(clustered(n + 40, dim: dim, seed: 21), dim: dim, queries: 40)
        let index = HNSWIndex(metric: .l2, dimension: dim, m: 12, efConstruction: 80)
        data.withUnsafeBufferPointer { p in
            for i in 0..<n { index.add(slot: UInt32(i), vector: p.baseAddress! + i * dim) }
        }
        XCTAssertEqual(index.liveCount, n)
        var deleted = Set<UInt32>()
        for s in stride(from: 0, to: n, by: 3) {
            index.remove(slot: UInt32(s))
            deleted.insert(UInt32(s))
        }
        XCTAssertEqual(index.liveCount, n - deleted.count)
        XCTAssertEqual(index.deletedCount, deleted.count)
        let r = recall(index, data: data, dim: dim, queries: queries, params: { SearchParameters(k: $0, ef: 120) }, excluding: deleted)
        XCTAssertGreaterThan(r, 0.9, "recall after deletes \(r)")
        // Replacing a vector: the search finds the new one at distance 0, never the old one.
        let moved = [Float](repeating: 9, count: dim)
        moved.withUnsafeBufferPointer { index.add(slot: 1, vector: $0.baseAddress!) }
        let top = moved.withUnsafeBufferPointer { index.search($0.baseAddress!, SearchParameters(k: 1)) }
        XCTAssertEqual(top.first?.slot, 1)
        XCTAssertEqual(top.first?.distance ?? -1, 0, accuracy: 1e-5)
        XCTAssertEqual(index.liveCount, n - deleted.count)
    }

    func testHNSWBuildIsReproducibleWithOneThread() {
        let dim = 8, n = 500
        let data = clustered(n, dim: dim, seed: 31)
        func build() -> [[UInt32]] {
            let index = HNSWIndex(metric: .ip, dimension: dim, m: 8, efConstruction: 50, seed: 7)
            data.withUnsafeBufferPointer { p in _ = index.build(slots: (0..<UInt32(n)).map { $0 }, vectors: p.baseAddress!, threads: 1) }
            return (0..<20).map { i in
                Array(data[(i * dim)..<((i + 1) * dim)]).withUnsafeBufferPointer { index.search($0.baseAddress!, SearchParameters(k: 5, ef: 10)).map(\.slot) }
            }
        }
        XCTAssertEqual(build(), build())
    }

    func testIVFRecallForEveryMetricAndNprobe() {
        let dim = 20, n = 5000
        let (data, queries) = split(clustered(n + 40, dim: dim, seed: 41), dim: dim, queries: 40)
        for metric in Metric.allCases {
            let index = data.withUnsafeBufferPointer { p in
                IVFFlatIndex.build(metric: metric, dimension: dim, slots: (0..<UInt32(n)).map { $0 }, vectors: p.baseAddress!,
                                   nlist: nil, threads: 2)!
            }
            XCTAssertEqual(index.nlist, IVFFlatIndex.defaultNlist(for: n))
            XCTAssertEqual(index.liveCount, n)
            let all = recall(index, data: data, dim: dim, queries: queries) { SearchParameters(k: $0, nprobe: index.nlist) }
            XCTAssertGreaterThan(all, 0.999, "IVF \(metric) probing every list must be exact, got \(all)")
            let some = recall(index, data: data, dim: dim, queries: queries) { SearchParameters(k: $0, nprobe: 16) }
            XCTAssertGreaterThan(some, 0.85, "IVF \(metric) nprobe 16 recall \(some)")
        }
    }

    func testIVFRemoveKeepsListsDenseAndNeverReturnsDeleted() {
        let dim = 8, n = 2000
        let data = clustered(n, dim: dim, seed: 51)
        let index = data.withUnsafeBufferPointer { p in
            IVFFlatIndex.build(metric: .l2, dimension: dim, slots: (0..<UInt32(n)).map { $0 }, vectors: p.baseAddress!,
                               nlist: 20, threads: 1)!
        }
        var deleted = Set<UInt32>()
        for s in stride(from: 1, to: n, by: 2) {
            index.remove(slot: UInt32(s))
            deleted.insert(UInt32(s))
        }
        XCTAssertEqual(index.liveCount, n - deleted.count)
        var rng = SeededRandom(seed: 52)
        let queries = (0..<30).map { _ in rng.vector(dim) }
        let r = recall(index, data: data, dim: dim, queries: queries, params: { SearchParameters(k: $0, nprobe: 20) }, excluding: deleted)
        XCTAssertGreaterThan(r, 0.999)
        XCTAssertEqual(IVFFlatIndex.defaultNlist(for: 100_000), 1265)
        XCTAssertEqual(IVFFlatIndex.defaultNlist(for: 1000), 25)
    }
}
