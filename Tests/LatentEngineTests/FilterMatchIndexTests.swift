import Foundation
@testable import LatentEngine
import LatentFilter
import LatentIndex
import LatentVectors
import XCTest

/// What a repeated filter gets: its matches' vectors gathered for the exact scan, and after
/// `FilterMatches.matchIndexAfterUses` walks its own graph (the match index). Both must follow vector
/// writes and deletes at once.
final class FilterMatchIndexTests: XCTestCase {
    private var directory = ""

    override func setUp() { directory = NSTemporaryDirectory() + "latentdb-matchindex-\(UUID().uuidString)" }
    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    /// An HNSW collection of `count` test vectors, element i with the attribute `cat` = i % categories,
    /// its index ready.
    private func filledCollection(_ catalog: CollectionCatalog, count: Int, dimension: Int, metric: Metric,
                                  categories: Int) throws -> LatentEngine.Collection {
        let c = try catalog.create(name: "c", dimension: dimension, metric: metric, index: IndexSpec(kind: .hnsw))
        for i in 0..<count {
            try c.upsert(id: ElementID("e\(i)"), vector: engineTestVector(i, dim: dimension),
                         attributes: Array("{\"cat\": \(i % categories)}".utf8))
        }
        waitForIndexReady(c)
        return c
    }

    private func exactIDs(_ c: LatentEngine.Collection, _ q: [Float], _ filter: FilterExpression, excluding: Set<ElementID> = []) throws -> [ElementID] {
        try c.search(q, SearchParameters(k: 10), exact: true, excluding: excluding, filter: filter).map(\.id)
    }

    /// The gathered copy is a cache of vectors: a vector written or deleted after it was taken must be
    /// seen by the next scan (regression: without the buffer's write stamp the old copy would answer).
    func testGatheredScanFollowsVectorWritesAndDeletes() throws {
        let dim = 16
        let catalog = try CollectionCatalog(directory: directory, fsync: .no)
        defer { catalog.close() }
        let c = try filledCollection(catalog, count: 5_000, dimension: dim, metric: .l2, categories: 100)
        let filter = try FilterExpression(".cat == 7")  // 50 matches: the planner scans them
        let q = engineTestVector(12_345, dim: dim)
        for _ in 0..<3 {
            let (hits, plan) = try c.searchPlanned(q, SearchParameters(k: 10), filter: filter)
            XCTAssertEqual(plan, .filteredScan)
            XCTAssertEqual(hits.map(\.id), try exactIDs(c, q, filter))
        }
        XCTAssertNotNil(c.state.withReadLock { c.filterMatchCache.matches(filter.source, version: c.attributeTable.version, dimension: dim) { nil } })
        // A matching element moves onto the query, its attributes kept (the attribute version, and so the
        // cache entry, stay the same): it must come first at once.
        let version = c.state.withReadLock { c.attributeTable.version }
        try c.upsert(id: ElementID("e107"), vector: q)
        XCTAssertEqual(c.state.withReadLock { c.attributeTable.version }, version)
        var hits = try c.searchPlanned(q, SearchParameters(k: 10), filter: filter).hits
        XCTAssertEqual(hits.first?.id, ElementID("e107"))
        XCTAssertEqual(hits.map(\.id), try exactIDs(c, q, filter))
        // Deleted: gone from the next answer, which still has 10 matches.
        XCTAssertTrue(try c.remove(id: ElementID("e107")))
        hits = try c.searchPlanned(q, SearchParameters(k: 10), filter: filter).hits
        XCTAssertFalse(hits.map(\.id).contains(ElementID("e107")))
        XCTAssertEqual(hits.map(\.id), try exactIDs(c, q, filter))
        XCTAssertEqual(hits.count, 10)
    }

    /// A filter walked often gets its own graph; its answers match the filter, honour exclusions, have
    /// high recall, and after a vector write the stale graph is not used until it is rebuilt.
    func testFrequentFilterGetsAMatchIndexThatFollowsWrites() throws {
        let dim = 8
        let catalog = try CollectionCatalog(directory: directory, fsync: .no)
        defer { catalog.close() }
        let c = try filledCollection(catalog, count: 16_000, dimension: dim, metric: .l2, categories: 100)
        let filter = try FilterExpression(".cat < 20")  // 20%: 3,200 matches, the planner walks
        let params = SearchParameters(k: 10, ef: 64)
        let queries = (0..<20).map { engineTestVector($0 * 131 + 7, dim: dim).map { $0 * 1.01 } }
        func check(_ expected: SearchPlan, _ what: String) throws {
            var recall = 0.0
            for q in queries {
                let (hits, plan) = try c.searchPlanned(q, params, filter: filter)
                XCTAssertEqual(plan, expected, what)
                XCTAssertEqual(hits.count, 10, what)
                for hit in hits { XCTAssertTrue(BoundFilter(filter, table: c.attributeTable).matches(slot: c.state.withReadLock { c.slotOf[hit.id]! }), what) }
                let exact = try exactIDs(c, q, filter)
                recall += Double(Set(hits.map(\.id)).intersection(exact).count) / 10
            }
            XCTAssertGreaterThanOrEqual(recall / Double(queries.count), 0.9, what)
        }
        // The first walks count; the build is queued at the threshold and the next queries use the graph.
        for _ in 0..<(FilterMatches.matchIndexAfterUses - 1) { _ = try c.searchPlanned(queries[0], params, filter: filter) }
        XCTAssertEqual(try c.searchPlanned(queries[0], params, filter: filter).plan, .index)
        catalog.indexer.waitUntilIdle()
        try check(.matchIndex, "with the match index")
        XCTAssertEqual(c.info().filterMatchIndexes, 1)
        // Exclusions are applied inside the match index's walk.
        let q = queries[3]
        let best = try exactIDs(c, q, filter)
        let excluded: Set<ElementID> = [best[0], best[1]]
        let (hits, plan) = try c.searchPlanned(q, params, excluding: excluded, filter: filter)
        XCTAssertEqual(plan, .matchIndex)
        XCTAssertEqual(hits.count, 10)
        XCTAssertTrue(excluded.isDisjoint(with: hits.map(\.id)))
        // A matching element's vector moves onto a query: the stale graph is not used, the answer has it.
        try c.upsert(id: ElementID("e5"), vector: q)
        let after = try c.searchPlanned(q, params, filter: filter)
        XCTAssertNotEqual(after.plan, .matchIndex)
        XCTAssertEqual(after.hits.first?.id, ElementID("e5"))
        waitForIndexReady(c)
        // Walked often again: rebuilt over the new vectors.
        for _ in 0..<FilterMatches.matchIndexAfterUses { _ = try c.searchPlanned(queries[0], params, filter: filter) }
        catalog.indexer.waitUntilIdle()
        let rebuilt = try c.searchPlanned(q, params, filter: filter)
        XCTAssertEqual(rebuilt.plan, .matchIndex)
        XCTAssertEqual(rebuilt.hits.first?.id, ElementID("e5"))
        try check(.matchIndex, "rebuilt")
    }

    /// Matches few enough to scan but whose vectors exceed `matchIndexMinFloats` are scanned exactly until
    /// the filter's match index is built, then searched through it (mnist10k's 10%: 900 x 784).
    func testLargeScansMoveToTheMatchIndex() throws {
        let dim = 200
        let catalog = try CollectionCatalog(directory: directory, fsync: .no)
        defer { catalog.close() }
        let c = try filledCollection(catalog, count: 3_000, dimension: dim, metric: .cosine, categories: 2)
        let filter = try FilterExpression(".cat == 1")  // 1,500 matches x 200 floats: over the threshold
        XCTAssertGreaterThanOrEqual(1_500 * dim, FilterMatches.matchIndexMinFloats)
        let params = SearchParameters(k: 10, ef: 64)
        let queries = (0..<10).map { engineTestVector($0 * 37 + 11, dim: dim).map { $0 * 0.97 } }
        for _ in 0..<FilterMatches.matchIndexAfterUses {
            let (hits, plan) = try c.searchPlanned(queries[0], params, filter: filter)
            XCTAssertEqual(plan, .filteredScan)
            XCTAssertEqual(hits.map(\.id), try exactIDs(c, queries[0], filter))
        }
        catalog.indexer.waitUntilIdle()
        var recall = 0.0
        for q in queries {
            let (hits, plan) = try c.searchPlanned(q, params, filter: filter)
            XCTAssertEqual(plan, .matchIndex)
            recall += Double(Set(hits.map(\.id)).intersection(try exactIDs(c, q, filter)).count) / 10
        }
        XCTAssertGreaterThanOrEqual(recall / Double(queries.count), 0.9)
        // TRUTH stays exact.
        let truth = try c.searchPlanned(queries[1], params, exact: true, filter: filter)
        XCTAssertNotEqual(truth.plan, .matchIndex)
        XCTAssertEqual(truth.hits.map(\.id), try exactIDs(c, queries[1], filter))
    }
}
