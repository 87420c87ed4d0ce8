import Foundation
import LatentIndex
import LatentStorage
import LatentVectors

/// `latentctl verify --data-dir`: reads a stopped server's whole store and reports, in words, what is
/// wrong with it. Checks, in order:
/// 1. RocksDB's block checksums: every record of every column family is read with checksum
///    verification (a flipped byte in an SST file fails here, naming the file);
/// 2. every collection definition decodes;
/// 3. every element id has exactly one slot, every slot's vector exists, has `dimension` floats and
///    only finite ones, and every vector has an element id;
/// 4. every index snapshot passes its checksum, decodes, and matches the store: each indexed slot is a
///    live element with the same vector (a snapshot that merely lacks elements written after it was
///    saved, as after a kill -9 or a backup of a live server, is a note, not a problem: latentd indexes
///    them at start).
/// Nothing is written. A running server's store is verified through a checkpoint (`verifyLive`, VERIFY).
public enum StoreVerifier {
    public struct Report: Sendable {
        public var problems: [String] = []
        /// Findings that are not damage: an index snapshot behind the store (latentd indexes the rest at start).
        public var notes: [String] = []
        public var collections = 0
        public var elements = 0
        public var records = 0
        public var snapshots = 0
        public var isClean: Bool { problems.isEmpty }
    }

    public static func verify(directory: String, progress: (String) -> Void = { _ in }) throws -> Report {
        let store = try LatentStore(directory: directory)
        defer { store.close() }
        return try verify(store, snapshotsMustMatch: true, progress: progress)
    }

    /// A running server's store (VERIFY): a RocksDB checkpoint of it (hard links, taken in a moment) is
    /// verified in `scratch`, a directory that must not exist, removed afterwards. Its index snapshots are
    /// checked for checksum and decoding only: a live server saves them from time to time, so a snapshot
    /// behind the store is normal there, not damage.
    public static func verifyLive(_ catalog: CollectionCatalog, scratch: String, progress: (String) -> Void = { _ in },
                                  isCancelled: () -> Bool = { false }) throws -> Report {
        try? FileManager.default.removeItem(atPath: scratch) // left by a crash during an earlier VERIFY
        try catalog.checkpoint(to: scratch)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let copy = try LatentStore(directory: scratch)
        defer { copy.close() }
        return try verify(copy, snapshotsMustMatch: false, progress: progress, isCancelled: isCancelled)
    }

    /// Thrown when `isCancelled` turns true (a shutdown during VERIFY).
    public struct Cancelled: Error, CustomStringConvertible {
        public var description: String { "verification cancelled: the server is shutting down" }
    }

    static func verify(_ store: LatentStore, snapshotsMustMatch: Bool, progress: (String) -> Void,
                       isCancelled: () -> Bool = { false }) throws -> Report {
        var report = Report()
        for cf in StoreLayout.columnFamilies {
            if isCancelled() { throw Cancelled() }
            do {
                var n = 0
                try store.db.scan(cf, prefix: []) { _, _ in n += 1; return !isCancelled() }
                report.records += n
                progress("checksums of \(cf): \(n) records read")
            } catch {
                report.problems.append("column family \(cf): \(error) (a damaged SST file: restore a backup, or `ldb --db=DIR repair`)")
            }
        }
        for (name, raw) in try store.collectionDefinitions() {
            if isCancelled() { throw Cancelled() }
            guard let definition = try? JSONDecoder().decode(CollectionDefinition.self, from: Data(raw)) else {
                report.problems.append("collection '\(name)': its definition does not decode (\(raw.count) bytes)")
                continue
            }
            report.collections += 1
            let problemsBefore = report.problems.count
            do {
                try verify(definition, in: store, snapshotsMustMatch: snapshotsMustMatch, into: &report)
            } catch {
                report.problems.append("collection '\(name)': reading it failed: \(error)")
            }
            progress("collection \(name): \(report.problems.count == problemsBefore ? "ok" : "\(report.problems.count - problemsBefore) problem(s)")")
        }
        return report
    }

    private static func verify(_ d: CollectionDefinition, in store: LatentStore, snapshotsMustMatch: Bool,
                               into report: inout Report) throws {
        let name = d.name
        var idOfSlot: [UInt32: ElementID] = [:]
        try store.scanKeys(collection: d.id) { bytes, slot in
            let id = ElementID(bytes: bytes)
            if let other = idOfSlot.updateValue(id, forKey: slot) {
                report.problems.append("collection '\(name)': elements \(other.description) and \(id.description) both map to slot \(slot)")
            }
        }
        report.elements += idOfSlot.count
        let buffer = VectorBuffer(dimension: d.dimension, initialCapacity: max(idOfSlot.count, 1))
        var withVector = Set<UInt32>()
        // Slots whose id has a stored vector, readable or not: an id is "without a vector" only when none.
        var stored = Set<UInt32>()
        var badLength = 0, nonFinite = 0, orphanVectors = 0
        let slotLimit = UInt32(min(Int(UInt32.max), max(idOfSlot.count, 1) * 4 + 1_000_000))
        try store.scanVectors(collection: d.id) { slot, bytes in
            guard idOfSlot[slot] != nil else { orphanVectors += 1; return }
            stored.insert(slot)
            guard bytes.count == d.dimension * 4 else { badLength += 1; return }
            var v = [Float](repeating: 0, count: d.dimension)
            for i in 0..<d.dimension {
                v[i] = Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)))
            }
            guard v.allSatisfy(\.isFinite) else { nonFinite += 1; return }
            withVector.insert(slot)
            if slot < slotLimit { buffer.set(slot: Int(slot), v) }
        }
        let missing = idOfSlot.filter { !stored.contains($0.key) }.count
        if missing > 0 {
            let example = idOfSlot.first { !stored.contains($0.key) }.map { "e.g. \($0.value.description)" } ?? ""
            report.problems.append("collection '\(name)': \(missing) element id(s) without a vector (\(example))")
        }
        if orphanVectors > 0 { report.problems.append("collection '\(name)': \(orphanVectors) vector(s) without an element id") }
        if badLength > 0 { report.problems.append("collection '\(name)': \(badLength) vector(s) whose length is not \(d.dimension) floats") }
        if nonFinite > 0 { report.problems.append("collection '\(name)': \(nonFinite) vector(s) with NaN or infinite components") }

        let snapshot = try store.indexSnapshot(collection: d.id)
        guard !snapshot.isEmpty else { return }
        report.snapshots += 1
        guard IndexSnapshot.checksumIsValid(snapshot) else {
            report.problems.append("collection '\(name)': its index snapshot fails its checksum (latentd rebuilds it at start)")
            return
        }
        let index: VectorIndex
        do {
            index = try IndexSnapshot.decode(snapshot, metric: d.metric, dimension: d.dimension)
        } catch {
            report.problems.append("collection '\(name)': its index snapshot does not decode: \(error)")
            return
        }
        guard snapshotsMustMatch else { return }
        var stale = 0
        for slot in index.indexedSlots {
            let live = withVector.contains(slot) && slot < slotLimit && buffer.isLive(Int(slot))
            if !live || !index.matches(slot: slot, vector: buffer.vector(Int(slot))) { stale += 1 }
        }
        let unindexed = withVector.filter { !index.contains(slot: $0) }.count
        if stale > 0 {
            report.problems.append("collection '\(name)': its index snapshot does not match the store: \(stale) indexed vector(s) "
                + "deleted or changed since it was saved (latentd repairs the index at start, but the two disagree)")
        }
        if unindexed > 0 {
            report.notes.append("collection '\(name)': its index snapshot is \(unindexed) element(s) behind the store "
                + "(written after it was saved; latentd indexes them at start)")
        }
    }
}
