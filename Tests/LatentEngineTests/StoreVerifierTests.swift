import Foundation
@testable import LatentEngine
import LatentIndex
import LatentStorage
import LatentVectors
import XCTest

/// `latentctl verify` (StoreVerifier): a healthy store is clean; a deleted vector record, a vector changed
/// behind its index snapshot and a damaged snapshot are each reported in words. (A flipped byte in an SST
/// file is covered with real files in tests/integration/test_verify.py.)
final class StoreVerifierTests: XCTestCase {
    private var directory = ""

    override func setUp() { directory = NSTemporaryDirectory() + "latentdb-verify-\(UUID().uuidString)" }
    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    /// A store with an HNSW collection of 500 x 16 whose snapshot was saved at close, and a flat one.
    private func makeStore() throws -> UInt32 {
        let catalog = try CollectionCatalog(directory: directory, fsync: .no)
        let hnsw = try catalog.create(name: "h", dimension: 16, metric: .l2, index: IndexSpec(kind: .hnsw))
        let flat = try catalog.create(name: "f", dimension: 4, metric: .ip)
        var rng = SplitMix64(seed: 9)
        for i in 0..<500 { _ = try hnsw.upsert(id: ElementID("e\(i)"), vector: (0..<16).map { _ in Float.random(in: -1...1, using: &rng) }) }
        for i in 0..<20 { _ = try flat.upsert(id: ElementID("f\(i)"), vector: [1, 2, 3, Float(i)]) }
        hnsw.settleIndex()
        let id = hnsw.collectionId
        catalog.close()
        return id
    }

    private func edit(_ body: (LatentStore, WriteBatch) throws -> Void) throws {
        let store = try LatentStore(directory: directory)
        defer { store.close() }
        let batch = WriteBatch(for: store.db)
        try body(store, batch)
        try store.db.write(batch)
    }

    func testAHealthyStoreIsClean() throws {
        _ = try makeStore()
        var lines: [String] = []
        let report = try StoreVerifier.verify(directory: directory) { lines.append($0) }
        XCTAssertTrue(report.isClean, "\(report.problems)")
        XCTAssertEqual(report.collections, 2)
        XCTAssertEqual(report.elements, 520)
        XCTAssertEqual(report.snapshots, 1)
        XCTAssertGreaterThan(report.records, 1000)
        XCTAssertTrue(lines.contains("collection h: ok"), "\(lines)")
    }

    func testADeletedVectorRecordIsReported() throws {
        let id = try makeStore()
        try edit { store, batch in try store.deleteSlotRecords(collection: id, slot: 7, in: batch) }
        let report = try StoreVerifier.verify(directory: directory)
        XCTAssertTrue(report.problems.contains { $0.contains("collection 'h': 1 element id(s) without a vector") }, "\(report.problems)")
        XCTAssertTrue(report.problems.contains { $0.contains("index snapshot does not match the store: 1 indexed vector(s)") },
                      "the snapshot still indexes the deleted slot: \(report.problems)")
    }

    func testAVectorChangedBehindItsSnapshotIsReported() throws {
        let id = try makeStore()
        try edit { store, batch in
            let changed = [Float](repeating: 0.25, count: 16).withUnsafeBytes { Array($0) }
            try store.putVector(collection: id, slot: 3, changed, in: batch)
        }
        let report = try StoreVerifier.verify(directory: directory)
        XCTAssertEqual(report.problems.count, 1, "\(report.problems)")
        XCTAssertTrue(report.problems[0].contains("its index snapshot does not match the store: 1 indexed vector(s) deleted or changed"),
                      report.problems[0])
    }

    func testDamagedSnapshotsAndBadVectorsAreReported() throws {
        let id = try makeStore()
        try edit { store, batch in
            var snapshot = try store.indexSnapshot(collection: id)
            snapshot[snapshot.count / 2] ^= 0xFF
            try store.replaceIndexSnapshot(collection: id, chunks: [snapshot[...]], in: batch)
            try store.putVector(collection: id, slot: 4, [Float](repeating: .nan, count: 16).withUnsafeBytes { Array($0) }, in: batch)
            try store.putVector(collection: id, slot: 5, [1, 2, 3], in: batch)
        }
        let problems = try StoreVerifier.verify(directory: directory).problems
        XCTAssertTrue(problems.contains { $0.contains("fails its checksum") }, "\(problems)")
        XCTAssertTrue(problems.contains { $0.contains("1 vector(s) with NaN or infinite components") }, "\(problems)")
        XCTAssertTrue(problems.contains { $0.contains("1 vector(s) whose length is not 16 floats") }, "\(problems)")
        XCTAssertFalse(problems.contains { $0.contains("without a vector") }, "bad vectors are not also counted as missing: \(problems)")
    }

    /// VERIFY's path: a checkpoint of the open store, so damage written behind the engine's back is found
    /// while it serves, and a snapshot merely behind the live store is not reported.
    func testLiveVerificationOfAnOpenStoreUsesACheckpoint() throws {
        let id = try makeStore()
        let catalog = try CollectionCatalog(directory: directory, fsync: .no)
        defer { catalog.close() }
        _ = try catalog.collection("h")!.upsert(id: "newer", vector: [Float](repeating: 0.5, count: 16)) // snapshot now behind
        let scratch = directory + "/.latentdb-verify"
        XCTAssertTrue(try StoreVerifier.verifyLive(catalog, scratch: scratch).isClean)
        XCTAssertFalse(FileManager.default.fileExists(atPath: scratch))
        let batch = WriteBatch(for: catalog.store.db)
        try catalog.store.putVector(collection: id, slot: 2, [Float](repeating: .infinity, count: 16).withUnsafeBytes { Array($0) }, in: batch)
        try catalog.store.db.write(batch)
        let problems = try StoreVerifier.verifyLive(catalog, scratch: scratch).problems
        XCTAssertEqual(problems, ["collection 'h': 1 vector(s) with NaN or infinite components"])
        // After close (a shutdown), a late VERIFY or BACKUP START gets an error, not a closed database.
        catalog.close()
        XCTAssertThrowsError(try catalog.checkpoint(to: scratch)) {
            XCTAssertEqual($0 as? EngineError, .storage("the store is closed (the server is shutting down)"))
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: scratch))
    }

    func testASnapshotMerelyBehindTheStoreIsANoteNotAProblem() throws {
        let id = try makeStore()
        // An element written after the snapshot was saved (what a kill -9 after the write leaves).
        try edit { store, batch in
            try store.putIdMapping(collection: id, id: Array("later".utf8), slot: 500, in: batch)
            try store.putVector(collection: id, slot: 500, [Float](repeating: 0.5, count: 16).withUnsafeBytes { Array($0) }, in: batch)
        }
        let report = try StoreVerifier.verify(directory: directory)
        XCTAssertTrue(report.isClean, "\(report.problems)")
        XCTAssertEqual(report.notes, ["collection 'h': its index snapshot is 1 element(s) behind the store (written after it was saved; latentd indexes them at start)"])
    }

    func testACancelledVerificationStopsWithCancelled() throws {
        _ = try makeStore()
        let catalog = try CollectionCatalog(directory: directory, fsync: .no)
        defer { catalog.close() }
        var checks = 0
        XCTAssertThrowsError(try StoreVerifier.verifyLive(catalog, scratch: directory + "/.v", isCancelled: { checks += 1; return checks > 3 })) {
            XCTAssertTrue($0 is StoreVerifier.Cancelled, "\($0)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory + "/.v"), "the checkpoint is removed when cancelled too")
    }

    func testAStoreHeldByAServerIsRefused() throws {
        _ = try makeStore()
        let catalog = try CollectionCatalog(directory: directory, fsync: .no)
        defer { catalog.close() }
        XCTAssertThrowsError(try StoreVerifier.verify(directory: directory)) {
            XCTAssertEqual(($0 as? StorageError)?.kind, .locked, "\($0)")
        }
    }
}
