import Foundation
@testable import LatentEngine
import LatentStorage
import LatentVectors
import XCTest

/// `Collection.upsert(_:)` (one RocksDB write for many elements) must leave exactly what the same
/// items upserted one by one leave: results, vectors, attributes, slot reuse, and what a reopen reads.
final class BatchedUpsertTests: XCTestCase {
    private var directory = ""

    override func setUp() {
        directory = NSTemporaryDirectory() + "latentdb-batch-\(UUID().uuidString)"
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private struct Outcome: Equatable {
        var added: Bool?
        var error: String?
        init(_ r: Result<Bool, Error>) {
            switch r {
            case .success(let b): added = b
            case .failure(let e): error = "\(e)".replacingOccurrences(of: "batched", with: "single")
            }
        }
    }

    private func contents(_ c: Collection, ids: [ElementID]) throws -> [String] {
        try ids.map { id in
            guard let v = c.vector(of: id) else { return "\(id): -" }
            let a = try c.attributes(of: id).map { String(decoding: $0, as: UTF8.self) } ?? "nil"
            return "\(id): \(v) \(a)"
        }
    }

    func testBatchedUpsertsLeaveWhatOneByOneUpsertsLeave() throws {
        var catalog: CollectionCatalog? = try CollectionCatalog(directory: directory, fsync: .no)
        let batched = try catalog!.create(name: "batched", dimension: 3, metric: .cosine)
        let single = try catalog!.create(name: "single", dimension: 3, metric: .cosine)
        var rng = SplitMix64(seed: 7)
        let ids = (0..<40).map { ElementID("e\($0)") }
        for round in 0..<30 {
            var items: [Collection.Upsert] = []
            for _ in 0..<Int(rng.next() % 24) {
                let id = ids[Int(rng.next() % UInt64(ids.count))]
                var v = (0..<3).map { _ in Float(Int(rng.next() % 9)) - 4 }
                switch rng.next() % 10 {
                case 0: v = [0, 0, 0] // zero under COSINE: that item alone fails
                case 1: v = [1, .nan, 2]
                case 2: v = [1, 2] // wrong dimension
                default: if v == [0, 0, 0] { v[0] = 1 }
                }
                let attributes: Collection.Upsert.AttributeChange
                switch rng.next() % 4 {
                case 0: attributes = .set(Array("{\"r\":\(round)}".utf8))
                case 1: attributes = .remove
                default: attributes = .keep
                }
                items.append(Collection.Upsert(id: id, vector: v, attributes: attributes))
            }
            let together = try batched.upsert(items).map(Outcome.init)
            let apart = try items.map { try single.upsert([$0])[0] }.map(Outcome.init)
            XCTAssertEqual(together, apart, "round \(round)")
            // Deletes between rounds leave free slots for the next batch to reuse.
            for _ in 0..<Int(rng.next() % 6) {
                let id = ids[Int(rng.next() % UInt64(ids.count))]
                XCTAssertEqual(try batched.remove(id: id), try single.remove(id: id))
            }
            XCTAssertEqual(try contents(batched, ids: ids), try contents(single, ids: ids), "round \(round)")
        }
        let expected = try contents(single, ids: ids)
        XCTAssertGreaterThan(batched.count, 5)
        catalog!.close()
        catalog = try CollectionCatalog(directory: directory, fsync: .no)
        XCTAssertEqual(try contents(catalog!.require("batched"), ids: ids), expected)
        XCTAssertEqual(try contents(catalog!.require("single"), ids: ids), expected)
        catalog!.close()
    }

    /// A refused write fails every item of the batch and changes nothing in memory.
    func testRefusedBatchWriteFailsEveryItemAndChangesNothing() throws {
        let setup = try CollectionCatalog(directory: directory, fsync: .no)
        try setup.create(name: "c", dimension: 2, metric: .l2)
        setup.close()
        var options = StoreOptions()
        options.minFreeDiskBytes = UInt64.max / 2 // more than any disk has: every write is refused
        let catalog = try CollectionCatalog(directory: directory, fsync: .no, storage: options)
        defer { catalog.close() }
        let c = try catalog.require("c")
        let results = try c.upsert([Collection.Upsert(id: "a", vector: [1, 2]), Collection.Upsert(id: "b", vector: [1]),
                                    Collection.Upsert(id: "c", vector: [3, 4])])
        XCTAssertEqual(c.count, 0)
        guard case .failure(let a as EngineError) = results[0], case .writesRefused = a else { return XCTFail("\(results[0])") }
        guard case .failure(let b as EngineError) = results[1], case .dimensionMismatch = b else { return XCTFail("\(results[1])") }
        guard case .failure(let d as EngineError) = results[2], case .writesRefused = d else { return XCTFail("\(results[2])") }
        XCTAssertNil(c.vector(of: "a"))
    }
}
