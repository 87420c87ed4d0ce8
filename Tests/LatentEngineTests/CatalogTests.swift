import Foundation
@testable import LatentEngine
import LatentIndex
import LatentStorage
import LatentVectors
import XCTest

final class CatalogTests: XCTestCase {
    private var directory = ""

    override func setUp() {
        directory = NSTemporaryDirectory() + "latentdb-engine-\(UUID().uuidString)"
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func assertEngineError(_ expected: EngineError, file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void) {
        XCTAssertThrowsError(try body(), file: file, line: line) { XCTAssertEqual($0 as? EngineError, expected, file: file, line: line) }
    }

    /// The id maps' bytes are counted as ids come and go (VINFO, INFO and metrics no longer walk every id):
    /// the running count equals a recount after inserts, batches with repeated ids, replacements, removals
    /// and a restart.
    func testIdBytesFollowInsertsRemovalsAndRestart() throws {
        func recount(_ c: Collection) -> Int { c.state.withReadLock { c.slotOf.keys.reduce(0) { $0 + Collection.bytesPerId($1) } } }
        var catalog: CollectionCatalog? = try CollectionCatalog(directory: directory, fsync: .no)
        let c = try catalog!.create(name: "c", dimension: 2, metric: .l2)
        for i in 0..<50 { try c.upsert(id: ElementID(String(repeating: "x", count: i + 1)), vector: [Float(i), 1]) }
        XCTAssertEqual(c.idBytes, recount(c))
        _ = try c.upsert([Collection.Upsert(id: "dup", vector: [1, 1]), Collection.Upsert(id: "dup", vector: [2, 2]),
                          Collection.Upsert(id: "x", vector: [3, 3])])
        XCTAssertEqual(c.idBytes, recount(c))
        XCTAssertTrue(try c.remove(id: "xx"))
        XCTAssertFalse(try c.remove(id: "xx"))
        XCTAssertEqual(c.idBytes, recount(c))
        let before = c.idBytes
        catalog!.close()
        catalog = try CollectionCatalog(directory: directory, fsync: .no)
        let reopened = try catalog!.require("c")
        XCTAssertEqual(reopened.idBytes, before)
        XCTAssertEqual(reopened.idBytes, recount(reopened))
        catalog!.close()
    }

    func testEverythingSurvivesReopen() throws {
        var catalog: CollectionCatalog? = try CollectionCatalog(directory: directory, fsync: .no)
        let items = try catalog!.create(name: "items", dimension: 4, metric: .ip)
        try catalog!.create(name: "gone", dimension: 2, metric: .l2)
        var expected: [ElementID: [Float]] = [:]
        var rng = SystemRandomNumberGenerator()
        for i in 0..<300 {
            let v = (0..<4).map { _ in Float.random(in: -1...1, using: &rng) }
            expected["m\(i)"] = v
            XCTAssertTrue(try items.upsert(id: "m\(i)", vector: v, attributes: i == 5 ? Array("{\"title\":\"five\"}".utf8) : nil))
        }
        XCTAssertFalse(try items.upsert(id: "m7", vector: [1, 2, 3, 4]))
        expected["m7"] = [1, 2, 3, 4]
        for i in stride(from: 100, to: 200, by: 2) {
            XCTAssertTrue(try items.remove(id: "m\(i)"))
            expected["m\(i)"] = nil
        }
        // Reused slots must not inherit the old element's data.
        try items.upsert(id: "fresh", vector: [0, 0, 1, 0])
        expected["fresh"] = [0, 0, 1, 0]
        XCTAssertTrue(try catalog!.drop("gone"))
        let before = try items.search([0.1, 0.2, 0.3, 0.4], SearchParameters(k: 20))
        catalog!.close()
        catalog = nil

        let reopened = try CollectionCatalog(directory: directory)
        defer { reopened.close() }
        XCTAssertEqual(reopened.names, ["items"])
        let again = try reopened.require("items")
        XCTAssertEqual(again.definition.metric, .ip)
        XCTAssertEqual(again.count, expected.count)
        for (id, v) in expected { XCTAssertEqual(again.vector(of: id), v, "\(id)") }
        XCTAssertNil(again.vector(of: "m100"))
        XCTAssertEqual(try again.attributes(of: "m5"), Array("{\"title\":\"five\"}".utf8))
        XCTAssertNil(try again.attributes(of: "fresh"))
        XCTAssertEqual(try again.search([0.1, 0.2, 0.3, 0.4], SearchParameters(k: 20)), before)
        // A new collection never reuses the dropped one's id.
        let newer = try reopened.create(name: "gone", dimension: 2, metric: .l2)
        XCTAssertEqual(newer.count, 0)
        XCTAssertEqual(newer.definition.id, 3)
    }

    func testBadInputsAreRejectedAndWriteNothing() throws {
        let catalog = try CollectionCatalog(directory: directory, fsync: .no)
        defer { catalog.close() }
        let c = try catalog.create(name: "cos", dimension: 3, metric: .cosine)
        assertEngineError(.dimensionMismatch(collection: "cos", expected: 3, got: 2)) { try c.upsert(id: "a", vector: [1, 2]) }
        assertEngineError(.nonFiniteComponent(index: 1)) { try c.upsert(id: "a", vector: [1, .nan, 2]) }
        assertEngineError(.nonFiniteComponent(index: 2)) { try c.upsert(id: "a", vector: [1, 1, .infinity]) }
        assertEngineError(.zeroVectorUnderCosine) { try c.upsert(id: "a", vector: [0, 0, 0]) }
        assertEngineError(.attributesTooLarge(bytes: 70_000)) {
            try c.upsert(id: "a", vector: [1, 1, 1], attributes: Array(("{\"x\":\"" + String(repeating: "y", count: 70_000 - 8) + "\"}").utf8))
        }
        assertEngineError(.invalidElementId("it is empty; use 1..512 bytes")) { try c.upsert(id: "", vector: [1, 1, 1]) }
        assertEngineError(.invalidElementId("it is 513 bytes; at most 512 are allowed")) {
            try c.upsert(id: ElementID(String(repeating: "i", count: 513)), vector: [1, 1, 1])
        }
        assertEngineError(.invalidCount(0)) { _ = try c.search([1, 1, 1], SearchParameters(k: 0)) }
        assertEngineError(.invalidCount(-1)) { _ = try c.search([1, 1, 1], SearchParameters(k: -1)) }
        XCTAssertLessThanOrEqual(try c.search([1, 1, 1], SearchParameters(k: Int.max)).count, c.count) // any COUNT, bounded by the size
        assertEngineError(.invalidCollectionName("bad name")) { try catalog.create(name: "bad name", dimension: 3, metric: .ip) }
        assertEngineError(.invalidCollectionName("")) { try catalog.create(name: "", dimension: 3, metric: .ip) }
        assertEngineError(.invalidDimension(0)) { try catalog.create(name: "z", dimension: 0, metric: .ip) }
        assertEngineError(.invalidDimension(4097)) { try catalog.create(name: "z", dimension: 4097, metric: .ip) }
        assertEngineError(.collectionExists("cos")) { try catalog.create(name: "cos", dimension: 3, metric: .ip) }
        assertEngineError(.unknownCollection("nope")) { _ = try catalog.require("nope") }
        XCTAssertEqual(c.count, 0)
        var stored = 0
        try catalog.store.scanVectors(collection: c.definition.id) { _, _ in stored += 1 }
        XCTAssertEqual(stored, 0, "a rejected write left records behind")
        // Names may use letters, digits and _ - . :
        XCTAssertNoThrow(try catalog.create(name: "ml-1m_v2.items:latest", dimension: 3, metric: .ip))
    }

    func testSearchOrdersTiesByIdAndScoresPerMetric() throws {
        let catalog = try CollectionCatalog(directory: directory, fsync: .no)
        defer { catalog.close() }
        let c = try catalog.create(name: "l2", dimension: 2, metric: .l2)
        for id: ElementID in ["d", "b", "a", "c"] { try c.upsert(id: id, vector: [1, 1]) }
        try c.upsert(id: "far", vector: [4, 5])
        let hits = try c.search([1, 1], SearchParameters(k: 5))
        XCTAssertEqual(hits.map(\.id), ["a", "b", "c", "d", "far"])
        XCTAssertEqual(hits.last!.score, 5, accuracy: 1e-6)
        XCTAssertEqual(try c.search([1, 1], SearchParameters(k: 2), exact: true).map(\.id), ["a", "b"])
    }

    func testDroppedCollectionRejectsLateWrites() throws {
        let catalog = try CollectionCatalog(directory: directory, fsync: .no)
        defer { catalog.close() }
        let c = try catalog.create(name: "x", dimension: 1, metric: .ip)
        XCTAssertTrue(try catalog.drop("x"))
        assertEngineError(.collectionDropped("x")) { try c.upsert(id: "a", vector: [1]) }
        XCTAssertNil(catalog.collection("x"))
    }

    // Regression (issue 7): VRENAME racing with VREBUILD could store the rebuilt definition under the old
    // name, leaving a second catalog entry sharing the collection's id (a ghost in VLIST after a restart,
    // whose drop deleted the other collection's data).
    func testRenameRacingRebuildLeavesNoGhost() throws {
        do {
            let catalog = try CollectionCatalog(directory: directory, fsync: .no)
            let c = try catalog.create(name: "a", dimension: 2, metric: .l2)
            for i in 0..<50 { try c.upsert(id: "e\(i)", vector: [Float(i), 1]) }
            let group = DispatchGroup()
            DispatchQueue.global().async(group: group) {
                for i in 0..<300 { try? catalog.rename(i % 2 == 0 ? "a" : "b", to: i % 2 == 0 ? "b" : "a") }
            }
            DispatchQueue.global().async(group: group) {
                for i in 0..<300 {
                    let spec = IndexSpec(kind: i % 3 == 0 ? .flat : .hnsw, m: 8 + i % 4)
                    try? catalog.rebuild("a", spec: spec)
                    try? catalog.rebuild("b", spec: spec)
                }
            }
            group.wait()
            XCTAssertEqual(catalog.names.count, 1)
            catalog.close()
        }
        let reopened = try CollectionCatalog(directory: directory, fsync: .no)
        defer { reopened.close() }
        XCTAssertEqual(reopened.names.count, 1, "ghost collection after restart: \(reopened.names)")
        XCTAssertEqual(reopened.all.first?.count, 50)
    }

    func testCatalogWhereTwoNamesShareAnIdIsRefused() throws {
        do {
            let catalog = try CollectionCatalog(directory: directory, fsync: .no)
            try catalog.create(name: "a", dimension: 2, metric: .l2)
            // Forge the ghost an older version could leave: a second definition with the same id.
            var ghost = catalog.collection("a")!.definition
            ghost.name = "ghost"
            let batch = WriteBatch(for: catalog.store.db)
            try catalog.store.putCollectionDefinition(name: "ghost", Array(try JSONEncoder().encode(ghost)), in: batch)
            try catalog.store.db.write(batch)
            catalog.close()
        }
        XCTAssertThrowsError(try CollectionCatalog(directory: directory, fsync: .no)) { error in
            XCTAssertTrue("\(error)".contains("share id"), "\(error)")
        }
    }

    // Regression (issue 7): EF_CONSTRUCTION below M was clamped by the index but stored as given, so the
    // built index never equalled its definition and builds looped (~140 builds a second).
    func testClampedIndexParametersDoNotLoopBuilds() throws {
        let catalog = try CollectionCatalog(directory: directory, fsync: .no)
        defer { catalog.close() }
        let c = try catalog.create(name: "x", dimension: 8, metric: .l2, index: IndexSpec(kind: .hnsw, m: 16, efConstruction: 4))
        XCTAssertEqual(c.definition.index, IndexSpec(kind: .hnsw, m: 16, efConstruction: 16))
        for i in 0..<20 { try c.upsert(id: "e\(i)", vector: (0..<8).map { Float($0 * i) }) }
        Thread.sleep(forTimeInterval: 1.5)
        let info = c.info().testFields
        XCTAssertLessThanOrEqual(Int(info["builds"] ?? "") ?? 999, 2, "\(info)")
        XCTAssertEqual(IndexSpec(kind: .hnsw, m: 1, efConstruction: nil).resolved, IndexSpec(kind: .hnsw, m: 2, efConstruction: 200))
        XCTAssertEqual(IndexSpec(kind: .ivf, m: 5, nlist: 3).resolved, IndexSpec(kind: .ivf, nlist: 3))
    }

    func testFailedDropLeavesTheCollectionUsable() throws {
        let catalog = try CollectionCatalog(directory: directory, fsync: .no)
        defer { catalog.close() }
        let c = try catalog.create(name: "x", dimension: 1, metric: .ip)
        struct Full: Error {}
        XCTAssertThrowsError(try c.drop { throw Full() })
        XCTAssertNoThrow(try c.upsert(id: "a", vector: [1]))
        XCTAssertTrue(try catalog.drop("x"))
    }

    // Regression (issue 7): norms that overflow or underflow float32 made elements vanish from their own
    // results (COSINE [1e30, 0] / [1e-30, 0]), IP products overflow to inf (inf - inf = NaN), L2 tie at inf.
    func testVectorsWhoseDistancesWouldOverflowAreRefused() throws {
        let catalog = try CollectionCatalog(directory: directory, fsync: .no)
        defer { catalog.close() }
        for metric in [Metric.cosine, .ip, .l2] {
            let c = try catalog.create(name: "m\(metric.rawValue)", dimension: 2, metric: metric)
            XCTAssertThrowsError(try c.upsert(id: "big", vector: [1e30, 0])) {
                XCTAssertTrue("\($0)".contains("too large"), "\($0)")
            }
            XCTAssertThrowsError(try c.search([1e20, 1e20], SearchParameters(k: 1)))
            // At the limit every distance is finite and ordered.
            try c.upsert(id: "p", vector: [8e18, 0])
            try c.upsert(id: "n", vector: [-8e18, 0])
            try c.upsert(id: "one", vector: [1, 0])
            let hits = try c.search([8e18, 0], SearchParameters(k: 3))
            XCTAssertEqual(hits.count, 3)
            XCTAssertTrue(hits.allSatisfy { $0.score.isFinite }, "\(metric): \(hits)")
            // Under COSINE "one" and "p" point the same way and tie (ordered by id).
            XCTAssertEqual(hits.first?.id, metric == .cosine ? "one" : "p", "\(metric): \(hits)")
            XCTAssertEqual(hits.last?.id, "n", "\(metric): \(hits)")
        }
        let cosine = try XCTUnwrap(catalog.collection("mCOSINE"))
        XCTAssertThrowsError(try cosine.upsert(id: "tiny", vector: [1e-30, 0])) { XCTAssertTrue("\($0)".contains("too small")) }
        try cosine.upsert(id: "small", vector: [2e-19, 0])
        let small = try cosine.search([2e-19, 0], SearchParameters(k: 4))
        XCTAssertEqual(Set(small.prefix(3).map(\.id)), ["one", "p", "small"], "\(small)")
        XCTAssertEqual(small[2].score, 1, accuracy: 1e-6)
        // Tiny vectors are fine where nothing is normalised.
        XCTAssertNoThrow(try catalog.collection("mL2")!.upsert(id: "tiny", vector: [1e-30, 0]))
    }

    // Regression (issue 7): ids that are not valid UTF-8 collapsed to U+FFFD, so distinct elements
    // overwrote each other. Ids are bytes now, end to end, and survive a restart.
    func testElementIdsAreBinarySafe() throws {
        let ids = [[0xFF], [0xFE], [0xC3], [0x00, 0x0A], Array("caf\u{E9}".utf8), Array("cafe\u{301}".utf8)].map { ElementID(bytes: $0) }
        do {
            let catalog = try CollectionCatalog(directory: directory, fsync: .no)
            let c = try catalog.create(name: "b", dimension: 2, metric: .l2)
            for (i, id) in ids.enumerated() { XCTAssertTrue(try c.upsert(id: id, vector: [Float(i), 0]), "\(id) overwrote another id") }
            XCTAssertEqual(c.count, ids.count)
            // Seen lists hold binary ids, including ones with a newline.
            XCTAssertTrue(try c.setSeen(id: ids[0], items: [ids[3], ids[1]]))
            catalog.close()
        }
        let catalog = try CollectionCatalog(directory: directory, fsync: .no)
        defer { catalog.close() }
        let c = try XCTUnwrap(catalog.collection("b"))
        XCTAssertEqual(c.count, ids.count)
        for (i, id) in ids.enumerated() { XCTAssertEqual(c.vector(of: id), [Float(i), 0]) }
        XCTAssertEqual(try c.seen(of: ids[0]), [ids[3], ids[1]])
        XCTAssertEqual(try c.search([2, 0], SearchParameters(k: 1)).first?.id, ids[2])
    }

    func testSeenListsWrittenByVersion1StillRead() throws {
        XCTAssertEqual(try SeenList.decode(Array("a\nbc\nd".utf8)), ["a", "bc", "d"])
        XCTAssertEqual(try SeenList.decode(SeenList.encode(["x", ElementID(bytes: [0xFF, 0x0A])])), ["x", ElementID(bytes: [0xFF, 0x0A])])
        XCTAssertThrowsError(try SeenList.decode([0xFF, 0x01, 0, 0, 0, 9, 1]))
    }

    /// Redis' VSETATTR stores any string; so does LatentDB (a filter treats non-JSON as matching nothing).
    func testAttributesAreAnyBytesKeptAsSent() throws {
        let catalog = try CollectionCatalog(directory: directory, fsync: .no)
        defer { catalog.close() }
        let c = try catalog.create(name: "a", dimension: 1, metric: .l2)
        for raw in [Array("{oops".utf8), Array("[1,2]".utf8), Array("{\"t\":\"".utf8) + [0xFF, 0x00] + Array("\"}".utf8)] {
            try c.upsert(id: "e", vector: [1], attributes: raw)
            XCTAssertEqual(try c.attributes(of: "e"), raw)
        }
        let exact = Array("{ \"t\" : \"caf\u{E9}\",\"n\":1.50 }".utf8)
        try c.upsert(id: "e", vector: [1], attributes: exact)
        XCTAssertEqual(try c.attributes(of: "e"), exact, "attributes are replied byte for byte")
    }

    func testConcurrentWritersAndReaders() throws {
        let catalog = try CollectionCatalog(directory: directory, fsync: .no)
        defer { catalog.close() }
        let c = try catalog.create(name: "x", dimension: 8, metric: .l2)
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            for i in 0..<200 {
                if worker % 2 == 0 {
                    try? c.upsert(id: "w\(worker)-\(i)", vector: [Float](repeating: Float(i), count: 8))
                } else {
                    _ = try? c.search([Float](repeating: 1, count: 8), SearchParameters(k: 5))
                }
            }
        }
        XCTAssertEqual(c.count, 800)
    }
}
