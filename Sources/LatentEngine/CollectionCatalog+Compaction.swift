import Foundation
import LatentStorage

extension CollectionCatalog {
    /// COMPACT / `latentctl compact`: a manual RocksDB compaction of one collection's records, or of the
    /// whole store with nil, so the space of deleted and overwritten records is given back (after a
    /// large delete, a drop or a reload). Writes and searches go on meanwhile: RocksDB compacts from a
    /// consistent view and swaps the files in.
    public func compact(_ name: String?,
                        progress: (LatentStore.CompactionStep, Int, Int) -> Void = { _, _, _ in }) throws -> [LatentStore.CompactionStep] {
        let id = try name.map { try require($0).collectionId }
        do {
            return try store.compact(collection: id, progress: progress)
        } catch let e as StorageError {
            throw EngineError.storage("compaction failed: \(e.message)")
        }
    }
}

extension CollectionCatalog {
    /// `latentctl compact --data-dir`: the same compaction on a store no server has open (latentd holds
    /// the directory's lock, so this fails with "locked" while it runs; use COMPACT then). Only the
    /// collection definitions are read: no vectors or indexes are loaded.
    public static func compact(directory: String, collection name: String?,
                               progress: (LatentStore.CompactionStep, Int, Int) -> Void) throws -> [LatentStore.CompactionStep] {
        let store = try LatentStore(directory: directory)
        defer { store.close() }
        var id: UInt32?
        if let name {
            guard let raw = try store.collectionDefinitions().first(where: { $0.name == name })?.definition else {
                throw EngineError.unknownCollection(name)
            }
            id = try JSONDecoder().decode(CollectionDefinition.self, from: Data(raw)).id
        }
        return try store.compact(collection: id, progress: progress)
    }
}

extension CollectionCatalog {
    /// Saves every index snapshot that is older than its index (not while a build runs), so a
    /// checkpoint taken next carries current indexes: a replica's full copy then loads them instead of
    /// building. Writes go on meanwhile; a snapshot older than the store is repaired at load.
    public func saveStaleIndexSnapshots() {
        for c in all where c.snapshotDirty { c.saveIndexSnapshot() }
    }

    /// A RocksDB checkpoint of the store in `path` (BACKUP START, VERIFY), taken under the catalog's lock
    /// so `close()` waits for one in progress and none starts after it (a background VERIFY racing a
    /// shutdown would otherwise use a closed database).
    public func checkpoint(to path: String) throws {
        try withOpenStore { try store.db.checkpoint(to: path) }
    }
}
