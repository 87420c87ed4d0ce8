import Foundation
@testable import LatentStorage
import XCTest

final class StorageTests: XCTestCase {
    private var directory = ""

    override func setUp() {
        directory = NSTemporaryDirectory() + "latentdb-storage-\(UUID().uuidString)"
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    func testPutGetDeleteScanAndReopen() throws {
        var store: LatentStore? = try LatentStore(directory: directory)
        let db = store!.db
        XCTAssertEqual(Set(db.columnFamilyNames), Set(StoreLayout.columnFamilies + ["default"]))
        let batch = WriteBatch(for: db)
        for slot in UInt32(0)..<5 { try batch.put(StoreLayout.vectors, StoreLayout.slotKey(7, slot), [UInt8(slot), 1, 2, 3]) }
        try batch.put(StoreLayout.vectors, StoreLayout.slotKey(8, 0), [9, 9, 9, 9])
        try batch.put(StoreLayout.keys, StoreLayout.idKey(7, Array("a".utf8)), StoreLayout.bigEndian(3))
        try batch.put(StoreLayout.attrs, StoreLayout.slotKey(7, 3), [])
        try db.write(batch, sync: true)
        XCTAssertEqual(try db.get(StoreLayout.vectors, StoreLayout.slotKey(7, 2)), [2, 1, 2, 3])
        XCTAssertEqual(try db.get(StoreLayout.attrs, StoreLayout.slotKey(7, 3)), [])
        XCTAssertNil(try db.get(StoreLayout.vectors, StoreLayout.slotKey(7, 99)))

        var seen: [UInt32] = []
        try store!.scanVectors(collection: 7) { slot, bytes in
            seen.append(slot)
            XCTAssertEqual(bytes.count, 4)
        }
        XCTAssertEqual(seen, [0, 1, 2, 3, 4])
        var keys: [([UInt8], UInt32)] = []
        try store!.scanKeys(collection: 7) { keys.append(($0, $1)) }
        XCTAssertEqual(keys.map(\.0), [Array("a".utf8)])
        XCTAssertEqual(keys.map(\.1), [3])

        let del = WriteBatch(for: db)
        try del.delete(StoreLayout.vectors, StoreLayout.slotKey(7, 0))
        try db.write(del)
        store!.close()
        store = nil

        let reopened = try LatentStore(directory: directory)
        defer { reopened.close() }
        var after: [UInt32] = []
        try reopened.scanVectors(collection: 7) { slot, _ in after.append(slot) }
        XCTAssertEqual(after, [1, 2, 3, 4])
        XCTAssertEqual(try reopened.db.get(StoreLayout.vectors, StoreLayout.slotKey(8, 0)), [9, 9, 9, 9])
    }

    func testDeleteCollectionRemovesOnlyItsRecords() throws {
        let store = try LatentStore(directory: directory)
        defer { store.close() }
        let batch = WriteBatch(for: store.db)
        try batch.put(StoreLayout.meta, StoreLayout.collectionKey("a"), [1])
        try batch.put(StoreLayout.meta, StoreLayout.collectionKey("b"), [2])
        for c in UInt32(1)...2 {
            try batch.put(StoreLayout.vectors, StoreLayout.slotKey(c, 0), [0, 0, 0, 0])
            try batch.put(StoreLayout.keys, StoreLayout.idKey(c, Array("x".utf8)), StoreLayout.bigEndian(0))
        }
        try store.db.write(batch)
        let drop = WriteBatch(for: store.db)
        try store.deleteCollection(name: "a", id: 1, in: drop)
        try store.db.write(drop)
        XCTAssertEqual(try store.collectionDefinitions().map(\.name), ["b"])
        var n1 = 0, n2 = 0
        try store.scanVectors(collection: 1) { _, _ in n1 += 1 }
        try store.scanVectors(collection: 2) { _, _ in n2 += 1 }
        XCTAssertEqual([n1, n2], [0, 1])
    }

    func testCollectionIdsAreNeverReused() throws {
        let store = try LatentStore(directory: directory)
        XCTAssertEqual(try store.allocateCollectionId(), 1)
        XCTAssertEqual(try store.allocateCollectionId(), 2)
        store.close()
        let again = try LatentStore(directory: directory)
        defer { again.close() }
        XCTAssertEqual(try again.allocateCollectionId(), 3)
    }

    func testSecondOpenOfTheSameDirectoryIsRefused() throws {
        let store = try LatentStore(directory: directory)
        defer { store.close() }
        XCTAssertThrowsError(try LatentStore(directory: directory)) { e in
            let err = e as? StorageError
            XCTAssertEqual(err?.kind, .locked)
            XCTAssertTrue(err?.message.contains("in use by another process") == true, "\(e)")
        }
    }

    func testDirectoryThatIsNotAStoreIsRefused() throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try "hello".write(toFile: directory + "/notes.txt", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try LatentStore(directory: directory)) { e in
            XCTAssertEqual((e as? StorageError)?.kind, .notAStore)
        }
        // And the directory was left as it was.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), ["notes.txt"])
    }

    func testFileInsteadOfDirectoryIsRefused() throws {
        try "x".write(toFile: directory, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try LatentStore(directory: directory)) { e in
            XCTAssertEqual((e as? StorageError)?.kind, .notAStore)
        }
    }

    func testForeignRocksDBIsRefused() throws {
        let db = try RocksDB(path: directory, options: RocksDBOptions(columnFamilies: ["stuff"]))
        db.close()
        XCTAssertThrowsError(try LatentStore(directory: directory)) { e in
            XCTAssertEqual((e as? StorageError)?.kind, .notAStore)
        }
    }

    func testNewerFormatVersionIsRefused() throws {
        let store = try LatentStore(directory: directory)
        let batch = WriteBatch(for: store.db)
        try batch.put(StoreLayout.meta, StoreLayout.formatVersionKey, littleEndian(StoreLayout.formatVersion + 1))
        try store.db.write(batch, sync: true)
        store.close()
        XCTAssertThrowsError(try LatentStore(directory: directory)) { e in
            let err = e as? StorageError
            XCTAssertEqual(err?.kind, .newerFormat)
            XCTAssertTrue(err?.message.contains("format version 2") == true, "\(e)")
        }
    }

    // Regression (issue 8): a garbled MANIFEST or CURRENT was reported as "not a LatentDB store", which
    // sends an operator the wrong way; it is a damaged store, and the message says what to do.
    func testDamagedManifestOrCurrentIsReportedAsDamage() throws {
        for target in ["CURRENT", "MANIFEST"] {
            let dir = directory + "-" + target
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let store = try LatentStore(directory: dir)
            store.close()
            let files = try FileManager.default.contentsOfDirectory(atPath: dir)
            let name = target == "CURRENT" ? "CURRENT" : try XCTUnwrap(files.first { $0.hasPrefix("MANIFEST-") })
            let path = dir + "/" + name
            var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            for i in stride(from: 0, to: bytes.count, by: 3) { bytes[i] ^= 0x5A }
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            XCTAssertThrowsError(try LatentStore(directory: dir), target) { e in
                let err = e as? StorageError
                XCTAssertEqual(err?.kind, .damaged, "\(target): \(e)")
                XCTAssertTrue(err?.message.contains("is damaged") == true && err?.message.contains("ldb") == true, "\(e)")
            }
        }
    }

    func testPrefixUpperBound() {
        XCTAssertEqual(prefixUpperBound([0, 0, 0, 1]), [0, 0, 0, 2])
        XCTAssertEqual(prefixUpperBound([0, 0xFF]), [1])
        XCTAssertNil(prefixUpperBound([0xFF, 0xFF]))
    }
}
