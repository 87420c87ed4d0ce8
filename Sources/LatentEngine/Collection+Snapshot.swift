import Collections
import Foundation
import LatentIndex
import LatentStorage
import Logging

/// Index snapshots in the `index` column family: saved after a build (and at shutdown when the index
/// changed since), loaded at startup so a restart does not rebuild.
///
/// A loaded snapshot is checked entry by entry against the vectors just read from the store: an entry
/// whose element was deleted or changed after the snapshot is dropped from the index and the element
/// goes to the pending tail. So a snapshot that is older than the last writes (a crash after them) is
/// repaired, never trusted; a corrupt one (checksum) is discarded and the index rebuilt in the background.
extension Collection {
    static let snapshotChunkBytes = 8 << 20

    /// Serializes the serving index and stores it, replacing any older snapshot. No-op for FLAT.
    func saveIndexSnapshot() {
        let encoded: [UInt8]? = state.withReadLock {
            guard !index.scansCollectionBuffer, index.isTrained, build == nil else { return nil }
            snapshotDirty = false
            return IndexSnapshot.encode(index)
        }
        guard let encoded else { return }
        do {
            let batch = WriteBatch(for: store.db)
            let chunks = stride(from: 0, to: encoded.count, by: Collection.snapshotChunkBytes).map {
                encoded[$0..<min(encoded.count, $0 + Collection.snapshotChunkBytes)]
            }
            try store.replaceIndexSnapshot(collection: collectionId, chunks: chunks, in: batch)
            try store.db.write(batch)
            // Into SST files now, so a restart reads it instead of replaying a huge batch from the WAL.
            try store.flushIndexSnapshots()
            indexer.logger.info("index snapshot saved", metadata: ["collection": "\(name)", "bytes": "\(encoded.count)"])
        } catch {
            indexer.logger.error("index snapshot of \(name) not saved: \(error)")
        }
    }

    /// Loads the stored snapshot if there is one that fits the requested index; called by `load` with
    /// the write lock held, after the vectors are in the buffer. Returns whether an index was installed.
    func loadIndexSnapshotLocked() -> Bool {
        let data: [UInt8]
        do {
            // Sized for an HNSW record per live vector, plus slack.
            data = try store.indexSnapshot(collection: collectionId,
                                           reservingCapacity: buffer.liveCount * (dimension * 4 + 160) + (1 << 20))
        } catch {
            indexer.logger.error("index snapshot of \(name) unreadable, rebuilding: \(error)")
            return false
        }
        guard !data.isEmpty else { return false }
        let loaded: VectorIndex
        do {
            loaded = try IndexSnapshot.decode(data, metric: metric, dimension: dimension)
        } catch {
            indexer.logger.error("index snapshot of \(name) rejected, rebuilding: \(error)")
            return false
        }
        guard loaded.spec.satisfies(indexSpec) else {
            indexer.logger.info("index snapshot of \(name) was built with other parameters; rebuilding")
            return false
        }
        var stale = 0
        for slot in loaded.indexedSlots where !buffer.isLive(Int(slot)) || !loaded.matches(slot: slot, vector: buffer.vector(Int(slot))) {
            loaded.remove(slot: slot)
            stale += 1
        }
        pending = OrderedSet((0..<buffer.slotCount).lazy.filter { self.buffer.isLive($0) && !loaded.contains(slot: UInt32($0)) }.map { UInt32($0) })
        index = loaded
        snapshotDirty = stale > 0 || !pending.isEmpty
        indexer.logger.info("index snapshot loaded", metadata: ["collection": "\(name)", "indexed": "\(loaded.liveCount)",
                                                                 "stale": "\(stale)", "pending": "\(pending.count)"])
        return true
    }
}
