import Foundation
@testable import LatentEngine
import LatentStorage
import LatentVectors
import XCTest

/// COMPACT and `latentctl compact`: the space of deleted records comes back, other collections keep
/// every record, and a store held by a server is refused offline.
final class CompactionTests: XCTestCase {
    private var directory = ""

    override func setUp() { directory = NSTemporaryDirectory() + "latentdb-compact-\(UUID().uuidString)" }
    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    private func fill(_ c: Collection, _ n: Int, seed: UInt64) throws -> [ElementID: [Float]] {
        var rng = SplitMix64(seed: seed)
        var written: [ElementID: [Float]] = [:]
        for i in 0..<n {
            let v = (0..<64).map { _ in Float.random(in: -1...1, using: &rng) }
            let id = ElementID("\(c.name)-\(i)")
            written[id] = v
            _ = try c.upsert(id: id, vector: v)
        }
        return written
    }

    func testCompactingACollectionGivesBackItsDeletedRecordsAndKeepsTheOthers() throws {
        let catalog = try CollectionCatalog(directory: directory, fsync: .no)
        let gone = try catalog.create(name: "gone", dimension: 64, metric: .l2)
        let kept = try catalog.create(name: "kept", dimension: 64, metric: .l2)
        let goneVectors = try fill(gone, 4000, seed: 1)
        let keptVectors = try fill(kept, 1000, seed: 2)
        try catalog.store.flushAll()
        let filled = catalog.store.db.sstBytes(StoreLayout.vectors)
        XCTAssertGreaterThan(filled, 1_000_000, "5,000 x 64 floats are on disk")
        for id in goneVectors.keys { XCTAssertTrue(try gone.remove(id: id)) }
        try catalog.store.flushAll()
        XCTAssertGreaterThanOrEqual(catalog.store.db.sstBytes(StoreLayout.vectors), filled / 2,
                                    "before compaction the deleted vectors still take their space")
        var reported: [(String, Int, Int)] = []
        let steps = try catalog.compact("gone") { step, done, total in reported.append((step.columnFamily, done, total)) }
        XCTAssertEqual(steps.map(\.columnFamily), [StoreLayout.vectors, StoreLayout.keys, StoreLayout.attrs, StoreLayout.index, StoreLayout.seen])
        XCTAssertEqual(reported.map(\.1), [1, 2, 3, 4, 5])
        XCTAssertTrue(reported.allSatisfy { $0.2 == 5 })
        let after = catalog.store.db.sstBytes(StoreLayout.vectors)
        XCTAssertLessThan(after, filled / 3, "the deleted 4,000 vectors' space is given back: \(filled) -> \(after)")
        XCTAssertEqual(steps[0].sstBytesAfter, after)
        for (id, v) in keptVectors { XCTAssertEqual(kept.vector(of: id), v) }
        XCTAssertThrowsError(try catalog.compact("nope")) { XCTAssertEqual($0 as? EngineError, .unknownCollection("nope")) }
        XCTAssertEqual(try catalog.compact(nil).count, StoreLayout.columnFamilies.count)
        // While a catalog (a server) holds the directory, the offline form is refused.
        XCTAssertThrowsError(try CollectionCatalog.compact(directory: directory, collection: nil) { _, _, _ in }) {
            XCTAssertEqual(($0 as? StorageError)?.kind, .locked, "\($0)")
        }
        catalog.close()

        XCTAssertThrowsError(try CollectionCatalog.compact(directory: directory, collection: "nope") { _, _, _ in }) {
            XCTAssertEqual($0 as? EngineError, .unknownCollection("nope"))
        }
        let offline = try CollectionCatalog.compact(directory: directory, collection: "kept") { _, _, _ in }
        XCTAssertEqual(offline.count, 5)
        let reopened = try CollectionCatalog(directory: directory, fsync: .no)
        defer { reopened.close() }
        XCTAssertEqual(reopened.collection("gone")?.count, 0)
        for (id, v) in keptVectors { XCTAssertEqual(reopened.collection("kept")?.vector(of: id), v) }
    }
}
