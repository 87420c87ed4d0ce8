import Foundation
@testable import LatentEngine
import LatentIndex
import LatentStorage
import LatentVectors
import XCTest

/// Background index builds: every acknowledged write is searchable at once, deletes are never returned,
/// rebuilds swap in without stopping reads or writes.
final class IndexMaintenanceTests: XCTestCase {
    private var directory = ""

    override func setUp() {
        directory = NSTemporaryDirectory() + "latentdb-index-\(UUID().uuidString)"
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func vector(_ i: Int, dim: Int) -> [Float] { engineTestVector(i, dim: dim) }

    private func waitForIndex(_ c: LatentEngine.Collection, timeout: TimeInterval = 240) { waitForIndexReady(c, timeout: timeout) }

    func testWritesAreVisibleImmediatelyWhileTheIndexBuilds() throws {
        for kind in [IndexSpec.Kind.hnsw, .ivf] {
            let catalog = try CollectionCatalog(directory: directory + "-\(kind)", fsync: .no)
            defer { catalog.close(); try? FileManager.default.removeItem(atPath: directory + "-\(kind)") }
            let dim = 16
            let c = try catalog.create(name: "c", dimension: dim, metric: .l2, index: IndexSpec(kind: kind))
            // Every acknowledged write must be the top hit for its own vector, whatever the index is doing.
            for i in 0..<12_000 {
                try c.upsert(id: "e\(i)", vector: vector(i, dim: dim))
                if i % 500 == 0 {
                    let hits = try c.search(vector(i, dim: dim), SearchParameters(k: 1, ef: 64, nprobe: 64))
                    XCTAssertEqual(hits.first?.id, "e\(i)", "\(kind): write \(i) not found at once")
                }
            }
            waitForIndex(c)
            let info = c.info().testFields
            XCTAssertEqual(info["index"], kind.rawValue)
            XCTAssertEqual(info["indexed"], "12000")
            // Deleted elements are never returned, in the index or in the tail.
            for i in stride(from: 0, to: 12_000, by: 10) { try c.remove(id: "e\(i)") }
            for i in stride(from: 0, to: 12_000, by: 1000) {
                let hits = try c.search(vector(i, dim: dim), SearchParameters(k: 20, ef: 100, nprobe: 32))
                XCTAssertFalse(hits.contains { $0.id == "e\(i)" }, "\(kind): deleted e\(i) returned")
                XCTAssertEqual(hits.count, 20)
            }
            // Replacing a vector moves the element.
            try c.upsert(id: "e5", vector: [Float](repeating: 50, count: dim))
            XCTAssertEqual(try c.search([Float](repeating: 50, count: dim), SearchParameters(k: 1)).first?.id, "e5")
        }
    }

    func testApproximateSearchAgreesWithExactOnMostResults() throws {
        let catalog = try CollectionCatalog(directory: directory, fsync: .no)
        defer { catalog.close() }
        let dim = 32
        let c = try catalog.create(name: "c", dimension: dim, metric: .cosine, index: IndexSpec(kind: .hnsw))
        for i in 0..<8000 { try c.upsert(id: "e\(i)", vector: vector(i, dim: dim)) }
        waitForIndex(c)
        var overlap = 0
        for q in 0..<50 {
            let query = vector(q * 97 + 5, dim: dim).map { $0 + 0.01 }
            let approx = Set(try c.search(query, SearchParameters(k: 10, ef: 128)).map(\.id))
            let exact = Set(try c.search(query, SearchParameters(k: 10), exact: true).map(\.id))
            overlap += approx.intersection(exact).count
        }
        XCTAssertGreaterThan(Double(overlap) / 500, 0.95)
    }

    func testRebuildWithNewParametersKeepsServing() throws {
        let catalog = try CollectionCatalog(directory: directory, fsync: .no)
        defer { catalog.close() }
        let dim = 8
        let c = try catalog.create(name: "c", dimension: dim, metric: .ip)
        for i in 0..<6000 { try c.upsert(id: "e\(i)", vector: vector(i, dim: dim)) }
        try catalog.rebuild("c", spec: IndexSpec(kind: .hnsw, m: 8, efConstruction: 64))
        // Reads and writes go on during the build.
        for i in 6000..<6500 {
            try c.upsert(id: "e\(i)", vector: vector(i, dim: dim))
            XCTAssertEqual(try c.search(vector(i, dim: dim), SearchParameters(k: 1), exact: true).isEmpty, false)
        }
        waitForIndex(c)
        let info = c.info().testFields
        XCTAssertEqual(info["index"], "HNSW")
        XCTAssertEqual(info["m"], "8")
        XCTAssertEqual(info["ef-construction"], "64")
        XCTAssertEqual(info["indexed"], "6500")
        // The new spec is stored: a reopened catalog builds the same index.
        catalog.close()
        let reopened = try CollectionCatalog(directory: directory, fsync: .no)
        XCTAssertEqual(try reopened.require("c").definition.index, IndexSpec(kind: .hnsw, m: 8, efConstruction: 64))
        waitForIndex(try reopened.require("c"))
        XCTAssertEqual(try reopened.require("c").count, 6500)
        reopened.close()
    }

    /// Delete/re-insert loops must not grow the graph and must not cost a rebuild: replaced nodes are
    /// unlinked by repair passes in the background and their nodes reused.
    func testReplacedNodesAreRepairedInPlaceWithoutRebuilding() throws {
        let catalog = try CollectionCatalog(directory: directory, fsync: .no)
        defer { catalog.close() }
        let dim = 8, n = 2000
        let c = try catalog.create(name: "c", dimension: dim, metric: .l2, index: IndexSpec(kind: .hnsw, m: 8, efConstruction: 32))
        for i in 0..<n { try c.upsert(id: "e\(i)", vector: vector(i, dim: dim)) }
        waitForIndex(c)
        let buildsAfterLoad = c.info().testFields["builds"]
        for round in 1...6 {
            for i in 0..<n { try c.upsert(id: "e\(i)", vector: vector(i + round * 7919, dim: dim)) }
            waitForIndex(c)
            let deadline = Date().addingTimeInterval(30)
            while c.info().testFields["deleted-in-index"] != "0" && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        }
        let info = c.info().testFields
        XCTAssertEqual(info["indexed"], String(n))
        // 12,000 replacements happened: every old node was unlinked and its memory reused.
        XCTAssertEqual(info["deleted-in-index"], "0")
        XCTAssertLessThanOrEqual(Int(info["free-nodes"] ?? "") ?? .max, n)
        XCTAssertEqual(info["builds"], buildsAfterLoad, "a rebuild ran")
        XCTAssertGreaterThanOrEqual(Int(info["repair-passes"] ?? "") ?? 0, 6)
        let graph = try XCTUnwrap(c.state.withReadLock { c.index as? HNSWIndex })
        XCTAssertLessThanOrEqual(graph.count, 2 * n)
        XCTAssertEqual(c.state.withReadLock { graph.structuralProblems() }, [])
        XCTAssertEqual(try c.search(vector(5 + 6 * 7919, dim: dim), SearchParameters(k: 1)).first?.id, "e5")
    }

    func testDropCancelsABuild() throws {
        let catalog = try CollectionCatalog(directory: directory, fsync: .no)
        defer { catalog.close() }
        let c = try catalog.create(name: "c", dimension: 64, metric: .l2)
        for i in 0..<20_000 { try c.upsert(id: "e\(i)", vector: vector(i, dim: 64)) }
        try catalog.rebuild("c", spec: IndexSpec(kind: .hnsw))
        XCTAssertTrue(try catalog.drop("c"))
        let started = Date()
        catalog.indexer.waitUntilIdle()
        XCTAssertLessThan(Date().timeIntervalSince(started), 20)
        XCTAssertNil(catalog.collection("c"))
    }

    // An untrained IVF is a state of the IVF index (no FLAT stand-in): searched exactly until k-means has
    // enough vectors, then trained in the background.
    func testUntrainedIVFIsAStateOfTheIndex() throws {
        let catalog = try CollectionCatalog(directory: directory, fsync: .no)
        defer { catalog.close() }
        let c = try catalog.create(name: "ivf", dimension: 8, metric: .l2, index: IndexSpec(kind: .ivf))
        for i in 0..<50 { try c.upsert(id: "e\(i)", vector: vector(i, dim: 8)) }
        var info = c.info()
        XCTAssertEqual(info.state, .untrained)
        XCTAssertEqual(info.pending, 50)
        XCTAssertEqual(info.indexFields.first?.name, "trained")
        XCTAssertEqual(try c.search(vector(7, dim: 8), SearchParameters(k: 1)).first?.id, "e7")
        for i in 50..<IVFFlatIndex.minimumTrainingSize + 10 { try c.upsert(id: "e\(i)", vector: vector(i, dim: 8)) }
        waitForIndex(c)
        info = c.info()
        XCTAssertEqual(info.state, .ready)
        XCTAssertEqual(info.indexed, IVFFlatIndex.minimumTrainingSize + 10)
        XCTAssertTrue(info.indexFields.contains { $0.name == "trained-on" })
        XCTAssertTrue(IndexSpec(kind: .ivf, nlist: 12).satisfies(IndexSpec(kind: .ivf)))
        XCTAssertFalse(IndexSpec(kind: .ivf, nlist: 12).satisfies(IndexSpec(kind: .ivf, nlist: 13)))
        XCTAssertFalse(IndexSpec(kind: .hnsw, m: 16, efConstruction: 200).satisfies(IndexSpec(kind: .hnsw, m: 8)))
    }
}

final class IndexSnapshotTests: XCTestCase {
    private var directory = ""

    override func setUp() {
        directory = NSTemporaryDirectory() + "latentdb-snap-\(UUID().uuidString)"
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func vector(_ i: Int, dim: Int) -> [Float] {
        (0..<dim).map { d in Float(cos(Double(i * 13 + d * 5))) + Float(i % 23) * 0.05 }
    }

    private func info(_ c: LatentEngine.Collection) -> [String: String] { c.info().testFields }

    private func waitReady(_ c: LatentEngine.Collection) {
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, !(info(c)["index-state"] == "ready" && info(c)["pending"] == "0") { Thread.sleep(forTimeInterval: 0.05) }
        XCTAssertEqual(info(c)["pending"], "0", "\(c.info())")
    }

    private func queries(_ c: LatentEngine.Collection, dim: Int) throws -> [[ElementID]] {
        try (0..<30).map { q in try c.search(vector(q * 37 + 1, dim: dim).map { $0 * 1.01 }, SearchParameters(k: 10, ef: 50, nprobe: 8)).map(\.id) }
    }

    func testSnapshotRoundTripGivesIdenticalResultsWithoutRebuilding() throws {
        for kind in [IndexSpec.Kind.hnsw, .ivf] {
            let dir = directory + "-\(kind)"
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let dim = 12
            var catalog: CollectionCatalog? = try CollectionCatalog(directory: dir, fsync: .no)
            let c = try catalog!.create(name: "c", dimension: dim, metric: .l2, index: IndexSpec(kind: kind))
            for i in 0..<7000 { try c.upsert(id: "e\(i)", vector: vector(i, dim: dim)) }
            waitReady(c)
            let before = try queries(c, dim: dim)
            let indexedBefore = info(c)["indexed"]
            catalog!.close()
            catalog = nil

            let reopened = try CollectionCatalog(directory: dir, fsync: .no)
            defer { reopened.close() }
            let again = try reopened.require("c")
            // Loaded, not rebuilt: ready at once, nothing pending.
            XCTAssertEqual(info(again)["index-state"], "ready", "\(kind)")
            XCTAssertEqual(info(again)["pending"], "0", "\(kind)")
            XCTAssertEqual(info(again)["indexed"], indexedBefore)
            XCTAssertEqual(try queries(again, dim: dim), before, "\(kind): results differ after restart")
        }
    }

    func testStaleSnapshotIsRepairedFromTheStore() throws {
        let dim = 8
        var catalog: CollectionCatalog? = try CollectionCatalog(directory: directory, fsync: .no)
        let c = try catalog!.create(name: "c", dimension: dim, metric: .cosine, index: IndexSpec(kind: .hnsw))
        for i in 0..<6000 { try c.upsert(id: "e\(i)", vector: vector(i, dim: dim)) }
        waitReady(c)
        c.saveIndexSnapshot()
        // Writes after the snapshot, then a "crash": the snapshot is not saved again.
        for i in 0..<100 { try c.remove(id: "e\(i)") }
        try c.upsert(id: "e200", vector: [Float](repeating: -3, count: dim).enumerated().map { $0.offset == 0 ? 5 : $0.element })
        try c.upsert(id: "new", vector: [Float](repeating: 1, count: dim))
        c.state.withWriteLock { c.snapshotDirty = false }
        catalog!.close()
        catalog = nil

        let reopened = try CollectionCatalog(directory: directory, fsync: .no)
        defer { reopened.close() }
        let again = try reopened.require("c")
        XCTAssertEqual(again.count, 5901)
        for i in 0..<100 {
            let hits = try again.search(vector(i, dim: dim), SearchParameters(k: 5))
            XCTAssertFalse(hits.contains { $0.id == "e\(i)" }, "deleted e\(i) came back from a stale snapshot")
        }
        XCTAssertEqual(try again.search([Float](repeating: 1, count: dim), SearchParameters(k: 1)).first?.id, "new")
        let moved = [Float](repeating: -3, count: dim).enumerated().map { $0.offset == 0 ? Float(5) : $0.element }
        XCTAssertEqual(try again.search(moved, SearchParameters(k: 1)).first?.id, "e200")
    }

    func testCorruptSnapshotIsRebuiltWithCorrectResults() throws {
        let dim = 8
        var catalog: CollectionCatalog? = try CollectionCatalog(directory: directory, fsync: .no)
        let c = try catalog!.create(name: "c", dimension: dim, metric: .ip, index: IndexSpec(kind: .hnsw))
        for i in 0..<6000 { try c.upsert(id: "e\(i)", vector: vector(i, dim: dim)) }
        waitReady(c)
        let collectionId = c.collectionId
        catalog!.close()
        catalog = nil
        // Flip one byte in the middle of the stored snapshot.
        let store = try LatentStore(directory: directory)
        var key: [UInt8] = []
        var value: [UInt8] = []
        try store.db.scan(StoreLayout.index, prefix: StoreLayout.prefix(collectionId)) { k, v in
            key = Array(k)
            value = Array(v)
            return false
        }
        XCTAssertFalse(value.isEmpty, "no snapshot was saved")
        value[value.count / 2] ^= 0xFF
        let batch = WriteBatch(for: store.db)
        try batch.put(StoreLayout.index, key, value)
        try store.db.write(batch, sync: true)
        store.close()

        let reopened = try CollectionCatalog(directory: directory, fsync: .no)
        defer { reopened.close() }
        let again = try reopened.require("c")
        // Served exactly from the pending tail until the rebuild lands, then from the new index.
        let exact = try again.search(vector(7, dim: dim), SearchParameters(k: 10), exact: true).map(\.id)
        XCTAssertEqual(try again.search(vector(7, dim: dim), SearchParameters(k: 10, ef: 200)).map(\.id), exact)
        waitReady(again)
        XCTAssertEqual(info(again)["indexed"], "6000")
        XCTAssertEqual(try again.search(vector(7, dim: dim), SearchParameters(k: 10, ef: 400)).map(\.id), exact)
    }
}
