import Foundation
@testable import LatentIndex
import LatentVectors
import XCTest

/// Real deletes in HNSW: repair passes relink around tombstones and reuse their nodes, so churn keeps
/// the graph's size and recall without a rebuild.
final class HNSWRepairTests: XCTestCase {
    private func row(_ data: [Float], _ i: Int, _ dim: Int) -> [Float] { Array(data[(i * dim)..<((i + 1) * dim)]) }

    /// 15 rounds replacing or deleting a fifth of the elements, repair running in short slices between
    /// the writes: the node count never passes the live count plus one round's deletes, the structure
    /// stays sound and recall stays at the level of a fresh graph.
    func testChurnKeepsSizeStructureAndRecall() {
        let dim = 16, n = 2000
        let pool = clustered(n * 4 + 40, dim: dim, seed: 5)
        let queries = (0..<40).map { row(pool, n * 4 + $0, dim) }
        var current = Array(pool[..<(n * dim)])
        var absent = Set<UInt32>()
        let index = HNSWIndex(metric: .l2, dimension: dim, m: 12, efConstruction: 80)
        for i in 0..<n { row(current, i, dim).withUnsafeBufferPointer { index.add(slot: UInt32(i), vector: $0.baseAddress!) } }
        var rng = SeededRandom(seed: 9)
        var next = n
        var peakNodes = 0
        for _ in 0..<15 {
            for _ in 0..<(n / 5) {
                let slot = UInt32.random(in: 0..<UInt32(n), using: &rng)
                if Bool.random(using: &rng) || absent.contains(slot) {
                    let v = row(pool, next % (n * 4), dim)
                    next += 1
                    v.withUnsafeBufferPointer { index.add(slot: slot, vector: $0.baseAddress!) }
                    current.replaceSubrange((Int(slot) * dim)..<((Int(slot) + 1) * dim), with: v)
                    absent.remove(slot)
                } else {
                    index.remove(slot: slot)
                    absent.insert(slot)
                }
                if Int.random(in: 0..<50, using: &rng) == 0 {
                    _ = index.repair(until: DispatchTime.now().uptimeNanoseconds + 200_000, idle: false)
                }
                peakNodes = max(peakNodes, index.count)
            }
            index.repairAll()
            XCTAssertEqual(index.deletedCount, 0)
            XCTAssertEqual(index.liveCount, n - absent.count)
            XCTAssertEqual(index.structuralProblems(), [])
        }
        XCTAssertLessThanOrEqual(peakNodes, n + n / 5, "nodes were not reused")
        XCTAssertGreaterThan(index.repairPasses, 15)
        let r = recall(index, data: current, dim: dim, queries: queries, params: { SearchParameters(k: $0, ef: 100) }, excluding: absent)
        XCTAssertGreaterThan(r, 0.93, "recall after churn \(r)")
    }

    /// Deleting every node (the entry point included) empties the graph; it then fills again from
    /// the freed nodes.
    func testDeletingEverythingThenRefilling() {
        let dim = 8, n = 300
        let data = clustered(n, dim: dim, seed: 3)
        let index = HNSWIndex(metric: .cosine, dimension: dim, m: 8, efConstruction: 40)
        for i in 0..<n { row(data, i, dim).withUnsafeBufferPointer { index.add(slot: UInt32(i), vector: $0.baseAddress!) } }
        // The entry point first, so the graph must move it while other nodes still live.
        index.remove(slot: index.slots[Int(index.entryPoint)])
        index.repairAll()
        XCTAssertEqual(index.structuralProblems(), [])
        XCTAssertFalse(index.deleted[Int(index.entryPoint)])
        for i in 0..<n { index.remove(slot: UInt32(i)) }
        index.repairAll()
        XCTAssertEqual(index.liveCount, 0)
        XCTAssertEqual(index.freeNodeCount, n)
        XCTAssertTrue(row(data, 0, dim).withUnsafeBufferPointer { index.search($0.baseAddress!, SearchParameters(k: 3)) }.isEmpty)
        for i in 0..<n { row(data, i, dim).withUnsafeBufferPointer { index.add(slot: UInt32(1000 + i), vector: $0.baseAddress!) } }
        XCTAssertEqual(index.count, n)
        XCTAssertEqual(index.structuralProblems(), [])
        let hit = row(data, 17, dim).withUnsafeBufferPointer { index.search($0.baseAddress!, SearchParameters(k: 1)) }
        XCTAssertEqual(hit.first?.slot, 1017)
    }

    /// Inserts never link to a tombstone, or a pass could free a node that is still linked.
    func testInsertsNeverLinkToTombstones() {
        let dim = 8, n = 400
        let data = clustered(n * 2, dim: dim, seed: 13)
        let index = HNSWIndex(metric: .l2, dimension: dim, m: 6, efConstruction: 30)
        for i in 0..<n { row(data, i, dim).withUnsafeBufferPointer { index.add(slot: UInt32(i), vector: $0.baseAddress!) } }
        let dead = Set((0..<UInt32(n)).filter { $0 % 2 == 0 })
        for s in dead { index.remove(slot: s) }
        let deadNodes = Set((0..<index.count).filter { index.deleted[$0] }.map { UInt32($0) })
        let before = index.count
        for i in n..<(2 * n) { row(data, i, dim).withUnsafeBufferPointer { index.add(slot: UInt32(i), vector: $0.baseAddress!) } }
        for node in before..<index.count {
            for level in 0...Int(index.levels[node]) {
                index.withLinks(UInt32(node), level, locked: false) { links in
                    XCTAssertTrue(links.allSatisfy { !deadNodes.contains($0) }, "new node \(node) links to a tombstone")
                }
            }
        }
    }

    /// A snapshot taken with tombstones and free nodes loads with the same answers; its deleted nodes
    /// come back as tombstones that the first pass frees.
    func testSnapshotWithTombstonesAndFreeNodes() throws {
        let dim = 12, n = 800
        let data = clustered(n + 200, dim: dim, seed: 17)
        let index = HNSWIndex(metric: .ip, dimension: dim, m: 8, efConstruction: 60)
        for i in 0..<n { row(data, i, dim).withUnsafeBufferPointer { index.add(slot: UInt32(i), vector: $0.baseAddress!) } }
        for s in stride(from: 0, to: n, by: 4) { index.remove(slot: UInt32(s)) }
        index.repairAll()
        for s in stride(from: 1, to: n, by: 10) { index.remove(slot: UInt32(s)) }
        for i in n..<(n + 50) { row(data, i, dim).withUnsafeBufferPointer { index.add(slot: UInt32(i), vector: $0.baseAddress!) } }
        let encoded = try XCTUnwrap(IndexSnapshot.encode(index))
        let loaded = try XCTUnwrap(IndexSnapshot.decode(encoded, metric: .ip, dimension: dim) as? HNSWIndex)
        XCTAssertEqual(loaded.liveCount, index.liveCount)
        for q in 0..<20 {
            let v = row(data, n + 100 + q, dim)
            let a = v.withUnsafeBufferPointer { index.search($0.baseAddress!, SearchParameters(k: 10)) }
            let b = v.withUnsafeBufferPointer { loaded.search($0.baseAddress!, SearchParameters(k: 10)) }
            XCTAssertEqual(a.map(\.slot), b.map(\.slot))
        }
        loaded.repairAll()
        XCTAssertEqual(loaded.deletedCount, 0)
        XCTAssertEqual(loaded.freeNodeCount, loaded.count - loaded.liveCount)
        XCTAssertEqual(loaded.structuralProblems(), [])
    }
}
