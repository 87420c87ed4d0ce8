import Foundation
@testable import LatentEngine
@testable import LatentIndex
import LatentVectors
import XCTest

/// Seen lists in memory and their slot sets: SlotSet against Set<UInt32>, exclusion equal to the exact
/// answer without the seen items while items are deleted, re-added and slots reused, lists rebuilt at
/// open, and exclusion under concurrent VADDSEEN.
final class SeenExclusionTests: XCTestCase {
    private var directory = ""

    override func setUp() { directory = NSTemporaryDirectory() + "latentdb-seen-\(UUID().uuidString)" }
    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    func testSlotSetAgreesWithASetThroughChunkConversions() {
        var rng = SplitMix64(seed: 11)
        var set = SlotSet(), reference = Set<UInt32>()
        // Dense in chunk 0 (array -> bitmap -> array again), sparse across chunks 1..40.
        for round in 0..<40_000 {
            let dense = round % 3 != 0
            let slot = dense ? UInt32(rng.next() % 9_000) : UInt32(rng.next() % (40 << 16))
            let insert = round < 20_000 ? rng.next() % 4 != 0 : rng.next() % 4 == 0
            if insert {
                XCTAssertEqual(set.insert(slot), reference.insert(slot).inserted)
            } else {
                XCTAssertEqual(set.remove(slot), reference.remove(slot) != nil)
            }
            if round % 5_000 == 4_999 {
                XCTAssertEqual(set.count, reference.count)
                XCTAssertEqual(set.members, reference.sorted())
                XCTAssertEqual(SlotSet(reference.shuffled()), set)
                for probe in 0..<2_000 { XCTAssertEqual(set.contains(UInt32(probe * 37)), reference.contains(UInt32(probe * 37))) }
            }
        }
        XCTAssertTrue(set.chunksAreBitmaps.contains(true) || reference.filter { $0 < 65_536 }.count <= SlotSet.arrayLimit)
        XCTAssertEqual(SlotSet([5, 5, 1, 70_000]).members, [1, 5, 70_000])
    }

    func testExclusionFollowsListChangesDeletesAndSlotReuseAndSurvivesReopen() throws {
        let dim = 8, n = 1_500
        var catalog: CollectionCatalog? = try CollectionCatalog(directory: directory, fsync: .no)
        let items = try catalog!.create(name: "items", dimension: dim, metric: .l2, index: IndexSpec(kind: .hnsw))
        let users = try catalog!.create(name: "users", dimension: dim, metric: .l2, index: IndexSpec(kind: .flat))
        for i in 0..<n { try items.upsert(id: ElementID("i\(i)"), vector: engineTestVector(i, dim: dim)) }
        try users.upsert(id: ElementID("u"), vector: engineTestVector(7, dim: dim))
        waitForIndexReady(items)
        let query = engineTestVector(3, dim: dim)
        var rng = SplitMix64(seed: 5)
        var seen = Set<ElementID>()
        var alive = Set((0..<n).map { ElementID("i\($0)") })
        func check(_ c: Collection, _ u: Collection, _ note: String) throws {
            let exact = try c.search(query, SearchParameters(k: 400), exact: true).map(\.id).filter { !seen.contains($0) }
            let snapshot = u.seenSnapshot(of: ElementID("u"))
            let got = try c.search(query, SearchParameters(k: 20, ef: 400), seen: snapshot).map(\.id)
            XCTAssertEqual(got, Array(exact.prefix(20)), note)
            let truth = try c.search(query, SearchParameters(k: 20), exact: true, seen: snapshot).map(\.id)
            XCTAssertEqual(truth, Array(exact.prefix(20)), note)
        }
        for round in 0..<12 {
            // Grow the list with near items (so exclusion matters), shrink it, delete seen and unseen items,
            // and add new items (reusing the freed slots), some of them on the list.
            let near = try items.search(query, SearchParameters(k: 200), exact: true).map(\.id)
            let add = (0..<60).map { _ in near[Int(rng.next() % UInt64(near.count))] }
            _ = try users.addSeen(id: ElementID("u"), items: add)
            seen.formUnion(add)
            let drop = Array(seen.shuffled(using: &rng).prefix(10))
            _ = try users.removeSeen(id: ElementID("u"), items: drop)
            seen.subtract(drop)
            // Ids of items that do not exist yet go on the list now, then the cached slot set is built; the
            // deletes and inserts below leave the list alone, so only the change log can bring it up to date.
            let future = (0..<20).filter { $0 % 2 == 0 }.map { ElementID("new\(round)-\($0)") }
            _ = try users.addSeen(id: ElementID("u"), items: future)
            seen.formUnion(future)
            try check(items, users, "round \(round), list changed")
            for victim in alive.shuffled(using: &rng).prefix(round % 2 == 0 ? 15 : 0) + seen.shuffled(using: &rng).prefix(5) {
                try items.remove(id: victim)
                alive.remove(victim)
            }
            for j in 0..<20 {
                let id = ElementID("new\(round)-\(j)")
                try items.upsert(id: id, vector: engineTestVector(3 + j, dim: dim).map { $0 + 0.001 * Float(round) })
                alive.insert(id)
            }
            try check(items, users, "round \(round)")
        }
        XCTAssertEqual(Set(users.seen(of: ElementID("u"))), seen)
        catalog?.close()
        catalog = try CollectionCatalog(directory: directory, fsync: .no)
        let items2 = try XCTUnwrap(catalog?.collection("items")), users2 = try XCTUnwrap(catalog?.collection("users"))
        XCTAssertEqual(Set(users2.seen(of: ElementID("u"))), seen, "lists are rebuilt at open")
        waitForIndexReady(items2)
        try check(items2, users2, "after reopen")
        XCTAssertGreaterThan(users2.seenListBytes, 0)
        // Deleting the user deletes its list; an empty list removes the record.
        try users2.remove(id: ElementID("u"))
        XCTAssertNil(users2.seenSnapshot(of: ElementID("u")))
        XCTAssertNil(try users2.addSeen(id: ElementID("u"), items: [ElementID("i1")]))
        catalog?.close()
    }

    func testExclusionUnderConcurrentAddSeen() throws {
        let dim = 8, n = 2_000
        let catalog = try CollectionCatalog(directory: directory, fsync: .no)
        defer { catalog.close() }
        let items = try catalog.create(name: "items", dimension: dim, metric: .l2, index: IndexSpec(kind: .hnsw))
        let users = try catalog.create(name: "users", dimension: dim, metric: .l2, index: IndexSpec(kind: .flat))
        for i in 0..<n { try items.upsert(id: ElementID("i\(i)"), vector: engineTestVector(i, dim: dim)) }
        try users.upsert(id: ElementID("u"), vector: engineTestVector(1, dim: dim))
        waitForIndexReady(items)
        let query = engineTestVector(1, dim: dim)
        let order = try items.search(query, SearchParameters(k: 600), exact: true).map(\.id)
        let done = ManagedAtomicFlag()
        let writer = Thread {
            for id in order.prefix(500) { _ = try? users.addSeen(id: ElementID("u"), items: [id]) }
            done.set()
        }
        writer.start()
        var checks = 0
        while !done.isSet || checks < 50 {
            // Everything on the list when the query takes its snapshot is excluded; COUNT still comes back.
            guard let snapshot = users.seenSnapshot(of: ElementID("u")) else { continue }
            let hits = try items.search(query, SearchParameters(k: 10, ef: 200), seen: snapshot).map(\.id)
            XCTAssertEqual(hits.count, 10)
            XCTAssertTrue(Set(hits).isDisjoint(with: snapshot.items), "a seen item came back")
            let expected = order.filter { !snapshot.items.contains($0) }.prefix(10)
            XCTAssertEqual(hits, Array(expected))
            checks += 1
        }
        XCTAssertEqual(users.seen(of: ElementID("u")).count, 500)
    }
}

/// A flag set once by one thread and read by another.
final class ManagedAtomicFlag: @unchecked Sendable {
    private var value = false  // guarded by lock
    private let lock = NSLock()
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}
