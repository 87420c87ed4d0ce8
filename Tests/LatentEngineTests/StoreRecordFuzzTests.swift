import Foundation
@testable import LatentEngine
import LatentIndex
@testable import LatentStorage
import LatentVectors
import XCTest

/// A structure fuzzer for the stored slot records a collection is loaded from: id mappings pointed at
/// other, huge or missing slots, vectors added at slots no id names, cut short or deleted. Each damaged
/// store must either load into a consistent collection (damaged records reported and deleted, so a
/// second open is clean) or be refused with a storage error that names the problem; never crash and
/// never size memory from a damaged slot.
final class StoreRecordFuzzTests: XCTestCase {
    private var root = ""

    override func setUp() { root = NSTemporaryDirectory() + "latentdb-recordfuzz-\(UUID().uuidString)" }
    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    private let dim = 4, n = 40

    private func vector(_ i: Int) -> [Float] { (0..<dim).map { Float(i * 7 + $0) + 1 } }

    private func floatBytes(_ v: [Float]) -> [UInt8] { v.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) } }

    func testDamagedSlotRecordsLoadConsistentlyOrAreRefused() throws {
        let base = root + "/base"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let collectionId: UInt32
        do {
            let catalog = try CollectionCatalog(directory: base, fsync: .no)
            let c = try catalog.create(name: "c", dimension: dim, metric: .l2, index: IndexSpec(kind: .hnsw))
            for i in 0..<n { try c.upsert(id: "e\(i)", vector: vector(i)) }
            collectionId = c.collectionId
            catalog.close()
        }
        var rng = SplitMix64(seed: 77)
        var loaded = 0, refused = 0
        for iteration in 0..<60 {
            let dir = root + "/m\(iteration)"
            try FileManager.default.copyItem(atPath: base, toPath: dir)
            do {
                let store = try LatentStore(directory: dir)
                let batch = WriteBatch(for: store.db)
                for _ in 0..<Int.random(in: 1...3, using: &rng) {
                    let id = Array("e\(Int.random(in: 0..<n, using: &rng))".utf8)
                    let slot = UInt32.random(in: 0..<UInt32(n), using: &rng)
                    switch Int.random(in: 0..<6, using: &rng) {
                    case 0: // two ids on one slot
                        try batch.put(StoreLayout.keys, StoreLayout.idKey(collectionId, id), StoreLayout.bigEndian(slot))
                    case 1: // an id on a slot far away, with or without a vector there
                        let far: UInt32 = [0xFFFF_FFF0, 0x7FFF_FFFF, 1 << 30, UInt32(n + 5)].randomElement(using: &rng)!
                        try batch.put(StoreLayout.keys, StoreLayout.idKey(collectionId, id), StoreLayout.bigEndian(far))
                        if Bool.random(using: &rng) {
                            try batch.put(StoreLayout.vectors, StoreLayout.slotKey(collectionId, far), floatBytes(vector(99)))
                        }
                    case 2: // a vector no id names
                        try batch.put(StoreLayout.vectors, StoreLayout.slotKey(collectionId, UInt32(n + 10)), floatBytes(vector(98)))
                    case 3: // a vector cut short
                        try batch.put(StoreLayout.vectors, StoreLayout.slotKey(collectionId, slot), [1, 2, 3])
                    case 4: // a vector lost
                        try batch.delete(StoreLayout.vectors, StoreLayout.slotKey(collectionId, slot))
                    default: // an id mapping of the wrong size
                        try batch.put(StoreLayout.keys, StoreLayout.idKey(collectionId, id), [1, 2])
                    }
                }
                try store.db.write(batch)
                store.close()
            }
            do {
                let catalog = try CollectionCatalog(directory: dir, fsync: .no)
                loaded += 1
                let c = try XCTUnwrap(catalog.collection("c"))
                let count = c.count
                // Every element it serves has its vector, and search returns only served elements.
                for i in 0..<n where c.contains(ElementID("e\(i)")) { XCTAssertEqual(c.vector(of: ElementID("e\(i)"))?.count, dim) }
                let hits = try c.search(vector(3), SearchParameters(k: n), exact: true)
                XCTAssertEqual(hits.count, count)
                XCTAssertTrue(hits.allSatisfy { c.contains($0.id) })
                try c.upsert(id: "fresh", vector: vector(50))
                catalog.close()
                // The damaged records were deleted: a second open loads the same elements plus the new one.
                let again = try CollectionCatalog(directory: dir, fsync: .no)
                XCTAssertEqual(again.collection("c")?.count, count + 1)
                again.close()
            } catch let EngineError.storage(message) {
                refused += 1
                XCTAssertTrue(message.contains("damaged") || message.contains("corrupt") || message.contains("expected"), message)
            }
            try? FileManager.default.removeItem(atPath: dir)
        }
        XCTAssertGreaterThan(loaded, 10)
        XCTAssertGreaterThan(refused, 5)
    }
}
