import Foundation
@testable import LatentEngine
import LatentFilter
import LatentIndex
import LatentVectors
import XCTest

/// FILTER inside the search: equal to the exact filtered answer where the plan is exact, COUNT results
/// whenever COUNT elements match, attributes changes visible at once and after a restart.
final class FilteredSearchTests: XCTestCase {
    private var directory = ""

    override func setUp() { directory = NSTemporaryDirectory() + "latentdb-filter-\(UUID().uuidString)" }
    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    /// 4,000 elements, `.cat` = i % 1000: `.cat < 500` keeps 50%, `< 100` 10%, `< 10` 1%, `== 3` 0.1%.
    func testFilteredSearchEqualsTheExactFilteredAnswerOnEveryIndex() throws {
        let n = 4_000, dim = 16
        let selectivities: [(String, Int)] = [(".cat < 500", 2_000), (".cat < 100", 400), (".cat < 10", 40), (".cat == 3", 4),
                                              (".tag == 't3' and .cat >= 900", 57), (".nothing > 1", 0), (".cat < 0", 0)]
        for kind in [IndexSpec.Kind.flat, .hnsw, .ivf] {
            let dir = directory + "-\(kind)"
            let catalog = try CollectionCatalog(directory: dir, fsync: .no)
            defer { catalog.close(); try? FileManager.default.removeItem(atPath: dir) }
            let c = try catalog.create(name: "c", dimension: dim, metric: .l2, index: IndexSpec(kind: kind))
            for i in 0..<n {
                try c.upsert(id: ElementID("e\(i)"), vector: engineTestVector(i, dim: dim),
                             attributes: Array("{\"cat\": \(i % 1000), \"tag\": \"t\(i % 7)\"}".utf8))
            }
            if kind != .flat { waitForIndexReady(c) }
            for (expression, matching) in selectivities {
                let filter = try FilterExpression(expression)
                var recall = 0.0, walkRecall = 0.0
                for q in 0..<20 {
                    let query = engineTestVector(q * 97 + 5, dim: dim).map { $0 * 1.02 }
                    let exact = try c.search(query, SearchParameters(k: 10), exact: true, filter: filter).map(\.id)
                    let (hits, plan) = try c.searchPlanned(query, SearchParameters(k: 10, ef: 100, nprobe: 8), filter: filter)
                    // The walk itself, whatever the planner would choose: COUNT results, all matching.
                    let walked = try c.searchPlanned(query, SearchParameters(k: 10, ef: 100, nprobe: 8), filter: filter, forcing: .index)
                    XCTAssertEqual(walked.hits.count, min(10, matching), "\(kind) \(expression): the walk returns COUNT")
                    for id in walked.hits.map(\.id) {
                        XCTAssertTrue(BoundFilter(filter, table: c.attributeTable).matches(slot: c.state.withReadLock { c.slotOf[id]! }))
                    }
                    if !exact.isEmpty {
                        walkRecall += Double(Set(walked.hits.map(\.id)).intersection(exact).count) / Double(exact.count)
                    }
                    XCTAssertEqual(exact.count, min(10, matching), "\(kind) \(expression): TRUTH returns every match up to COUNT")
                    XCTAssertEqual(hits.count, min(10, matching), "\(kind) \(expression): COUNT results whenever COUNT match")
                    if plan != .index { XCTAssertEqual(hits.map(\.id), exact, "\(kind) \(expression) plan \(plan) is exact") }
                    if !exact.isEmpty { recall += Double(Set(hits.map(\.id)).intersection(exact).count) / Double(exact.count) }
                    // 4,000 elements: every filter here expects at most 2,000 matches, so the planner scans them;
                    // FLAT scans everything and tests the filter on near vectors when a quarter or more match.
                    XCTAssertEqual(plan, kind == .flat && matching >= 1_000 ? .fullScan : .filteredScan, "\(kind) \(expression)")
                }
                if matching > 0 {
                    XCTAssertEqual(recall / 20, 1, "\(kind) \(expression) recall")
                    XCTAssertGreaterThanOrEqual(walkRecall / 20, 0.9, "\(kind) \(expression) recall of the walk")
                }
            }
        }
    }

    func testAttributeChangesAreSeenByTheNextQueryAndAfterRestart() throws {
        do {
            let catalog = try CollectionCatalog(directory: directory, fsync: .no)
            let c = try catalog.create(name: "c", dimension: 2, metric: .cosine, index: IndexSpec(kind: .hnsw))
            try c.upsert(id: "a", vector: [1, 0], attributes: Array(#"{"on": true}"#.utf8))
            try c.upsert(id: "b", vector: [1, 0.1])
            let on = try FilterExpression(".on")
            XCTAssertEqual(try c.search([1, 0], SearchParameters(k: 5), filter: on).map(\.id), ["a"], "the pending tail is filtered too")
            XCTAssertTrue(try c.setAttributes(id: "b", json: Array(#"{"on": 1}"#.utf8)))
            XCTAssertEqual(try c.search([1, 0], SearchParameters(k: 5), filter: on).map(\.id), ["a", "b"])
            XCTAssertTrue(try c.setAttributes(id: "a", json: []))
            try c.upsert(id: "b", vector: [0.5, 0.5])  // a replaced vector keeps its attributes
            XCTAssertEqual(try c.search([1, 0], SearchParameters(k: 5), filter: on).map(\.id), ["b"])
            XCTAssertTrue(try c.remove(id: "b"))
            try c.upsert(id: "c", vector: [1, 0])  // may reuse b's slot: must not inherit its attributes
            XCTAssertEqual(try c.search([1, 0], SearchParameters(k: 5), filter: on).map(\.id), [])
            try c.upsert(id: "d", vector: [0, 1], attributes: Array(#"{"on": 1, "w": "x"}"#.utf8))
            catalog.close()
        }
        let reopened = try CollectionCatalog(directory: directory, fsync: .no)
        defer { reopened.close() }
        let c = try reopened.require("c")
        XCTAssertEqual(try c.search([1, 0], SearchParameters(k: 5), filter: try FilterExpression(".on and .w == 'x'")).map(\.id), ["d"],
                       "attribute columns are rebuilt at startup")
    }

    /// The filter-match cache: a repeated expression reuses its matches while the attributes stay as they
    /// were, and any attribute change (set, clear, a removed element's slot reused) is seen by the next query.
    func testCachedFilterMatchesFollowAttributeChanges() throws {
        let catalog = try CollectionCatalog(directory: directory, fsync: .no)
        defer { catalog.close() }
        let c = try catalog.create(name: "c", dimension: 2, metric: .l2, index: IndexSpec(kind: .hnsw))
        for i in 0..<300 {
            try c.upsert(id: ElementID("e\(i)"), vector: [Float(i), 1], attributes: Array("{\"n\": \(i)}".utf8))
        }
        let f = try FilterExpression(".n >= 290")
        let expected = (290..<300).reversed().map { ElementID("e\($0)") }
        func run() throws -> [ElementID] { try c.search([1000, 1], SearchParameters(k: 20), filter: f).map(\.id) }
        XCTAssertEqual(try run(), expected)
        XCTAssertEqual(c.info().filterCacheEntries, 1)
        let bytes = c.info().filterCacheBytes
        XCTAssertGreaterThan(bytes, 0)
        XCTAssertEqual(try run(), expected, "answered from the cached matches")
        XCTAssertEqual(c.filterMatchCache.count, 1)
        // A changed attribute: the next query sees it.
        XCTAssertTrue(try c.setAttributes(id: "e5", json: Array(#"{"n": 295}"#.utf8)))
        XCTAssertEqual(try run(), expected + ["e5"])
        XCTAssertTrue(try c.setAttributes(id: "e299", json: []))
        XCTAssertEqual(try run(), Array(expected.dropFirst()) + ["e5"])
        // A removed element whose slot is reused by one without attributes: not a match.
        XCTAssertTrue(try c.remove(id: "e298"))
        try c.upsert(id: "new", vector: [999, 1])
        XCTAssertEqual(try run(), Array(expected.dropFirst(2)) + ["e5"])
        // A vector replaced without attributes keeps its attributes, and its match.
        try c.upsert(id: "e297", vector: [2000, 1])
        XCTAssertEqual(try c.search([2000, 1], SearchParameters(k: 1), filter: f).map(\.id), ["e297"])
        // Exact plans and walks agree with the cache.
        XCTAssertEqual(try c.search([1000, 1], SearchParameters(k: 20), exact: true, filter: f).map(\.id), try run())
        // Bounded: at most maxEntries expressions.
        for i in 0..<(FilterMatchCache.maxEntries + 8) {
            _ = try c.search([1, 1], SearchParameters(k: 1), filter: try FilterExpression(".n == \(i)"))
        }
        XCTAssertEqual(c.filterMatchCache.count, FilterMatchCache.maxEntries)
        // An expression without a column-at-a-time form is evaluated per slot and not cached.
        let arithmetic = try FilterExpression(".n * 2 > 590")
        XCTAssertNil(c.filterMatchCache.matches(arithmetic.source, version: 0, dimension: 4) { nil })
    }

    /// FILTER-EF is Redis' bounded effort: only that many nearest elements are tested.
    func testFilterBudgetTestsOnlyTheNearestElements() throws {
        let catalog = try CollectionCatalog(directory: directory, fsync: .no)
        defer { catalog.close() }
        let c = try catalog.create(name: "c", dimension: 2, metric: .l2)
        for i in 0..<50 { try c.upsert(id: ElementID("e\(i)"), vector: [Float(i), 0], attributes: Array("{\"i\": \(i)}".utf8)) }
        let far = try FilterExpression(".i >= 40")
        XCTAssertEqual(try c.search([0, 0], SearchParameters(k: 3), filter: far).map(\.id), ["e40", "e41", "e42"])
        XCTAssertEqual(try c.search([0, 0], SearchParameters(k: 3), filter: far, filterBudget: 1).map(\.id), [])
        XCTAssertEqual(try c.search([0, 0], SearchParameters(k: 3), filter: far, filterBudget: 42).map(\.id), ["e40", "e41"])
        XCTAssertEqual(try c.search([0, 0], SearchParameters(k: 3), withAttributes: true, filter: far, filterBudget: 500).map(\.attributes),
                       [Array("{\"i\": 40}".utf8), Array("{\"i\": 41}".utf8), Array("{\"i\": 42}".utf8)])
    }

    /// Regression (redis-py's test_vsim_with_filter failed in CI): with M = 4, an element pointing away
    /// from all others can end up with no incoming links, so the graph walk never reaches it. FILTER-EF
    /// covering the whole set must still test every element.
    func testFilterBudgetCoveringTheSetTestsEveryElementEvenOnePoorlyLinked() throws {
        for seed in UInt64(1)...12 {
            let dir = directory + "-\(seed)"
            let catalog = try CollectionCatalog(directory: dir, fsync: .no)
            defer { catalog.close(); try? FileManager.default.removeItem(atPath: dir) }
            let c = try catalog.create(name: "c", dimension: 64, metric: .cosine, index: IndexSpec(kind: .hnsw, m: 4))
            var g = SplitMix64(seed: seed)
            func uniform() -> Float { 10 + 10 * Float(g.next() >> 40) / Float(1 << 24) }
            for i in 0..<50 {
                try c.upsert(id: ElementID("e\(i)"), vector: (0..<64).map { _ in uniform() },
                             attributes: Array("{\"index\": \(i)}".utf8))
            }
            try c.upsert(id: "special", vector: (0..<64).map { _ in -uniform() }, attributes: Array("{\"index\": 50}".utf8))
            waitForIndexReady(c)
            let query = c.vector(of: "e1")!
            let hits = try c.search(query, SearchParameters(k: 10), filter: try FilterExpression(".index > 49"), filterBudget: 500)
            XCTAssertEqual(hits.map(\.id), ["special"], "seed \(seed)")
        }
    }

    func testExcludedElementsAreLeftOutInsideTheSearch() throws {
        let catalog = try CollectionCatalog(directory: directory, fsync: .no)
        defer { catalog.close() }
        let c = try catalog.create(name: "c", dimension: 8, metric: .l2, index: IndexSpec(kind: .hnsw))
        for i in 0..<500 { try c.upsert(id: ElementID("e\(i)"), vector: engineTestVector(i, dim: 8)) }
        waitForIndexReady(c)
        let query = engineTestVector(3, dim: 8)
        let all = try c.search(query, SearchParameters(k: 20), exact: true).map(\.id)
        let excluded = Set(all.prefix(15))
        let hits = try c.search(query, SearchParameters(k: 10, ef: 10), excluding: excluded).map(\.id)
        XCTAssertEqual(hits.count, 10, "COUNT results though 15 of the nearest are excluded and EF is only 10")
        XCTAssertTrue(Set(hits).isDisjoint(with: excluded))
        XCTAssertEqual(Array(hits.prefix(5)), Array(all.suffix(5)))
    }
}
