import Foundation
import LatentIndex
import LatentStorage
import LatentVectors
import Logging

/// What `latentctl info` shows of a collection, read without loading its vectors.
public struct CollectionSummary: Sendable {
    public var name: String
    public var dimension: Int
    public var metric: Metric
    public var index: IndexSpec
    public var size: Int
    public var snapshotBytes: Int
    public var snapshotValid: Bool
}

/// All collections of one data directory: opens them at startup, creates and drops them, and owns
/// the WAL sync policy.
///
/// Guarding: `collections` and `closed` are guarded by `lock` (held across whole create, drop, rename and
/// rebuild-definition writes); `monitor` is set in init and stopped in `close`, after which no request
/// runs; `store`, `fsync`, `indexer` and `logger` are immutable.
public final class CollectionCatalog: @unchecked Sendable {
    public let store: LatentStore
    public let fsync: FsyncPolicy
    private let lock = NSLock()
    private var collections: [String: Collection] = [:]
    private let logger: Logger
    private var monitor: StorageMonitor?
    public let indexer: BackgroundIndexer
    private var closed = false

    /// Opens the store at `directory` and loads every collection into memory.
    public init(directory: String, fsync: FsyncPolicy = .everysec, storage: StoreOptions = StoreOptions(),
                logger: Logger = Logger(label: "latentdb.engine")) throws {
        self.fsync = fsync
        self.logger = logger
        indexer = BackgroundIndexer(logger: logger)
        store = try LatentStore(directory: directory, options: storage)
        if let report = store.lastRecoveryReport { logger.critical("--recover-truncate: \(report)") }
        let decoder = JSONDecoder()
        var nameOfId: [UInt32: String] = [:]
        for (name, raw) in try store.collectionDefinitions() {
            var definition: CollectionDefinition
            do {
                definition = try decoder.decode(CollectionDefinition.self, from: Data(raw))
            } catch {
                store.close()
                throw EngineError.storage("collection definition of '\(name)' is unreadable: \(error)")
            }
            // Two names sharing an id would share records: dropping one would delete the other's data.
            // Refuse to serve such a catalog rather than guess which name is right.
            if let other = nameOfId[definition.id] {
                store.close()
                throw EngineError.storage("catalog is inconsistent: collections '\(other)' and '\(name)' share id \(definition.id); "
                    + "stop latentd, keep the right one and delete the other's definition with "
                    + "`ldb --db=\(directory) --column_family=meta delete collection/NAME` (Debian's rocksdb-tools)")
            }
            nameOfId[definition.id] = name
            if definition.name != name { definition.name = name }
            // Definitions written before specs were resolved (e.g. EF_CONSTRUCTION below M) made builds loop.
            definition.index = definition.index.resolved
            let c = Collection(definition: definition, store: store, indexer: indexer)
            let started = DispatchTime.now().uptimeNanoseconds
            do {
                try c.load()
            } catch {
                store.close()
                throw error
            }
            collections[name] = c
            logger.info("loaded collection", metadata: ["name": "\(name)", "size": "\(c.count)",
                "seconds": "\(Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9)"])
        }
        if let reason = store.db.readOnlyReason {
            logger.critical("""
                the disk holding \(directory) is full: opened the store READ-ONLY (\(reason)). Searches and reads are \
                served; every write is refused with MISCONF. Free disk space and restart latentd to take writes again.
                """)
        }
        let monitor = StorageMonitor(db: store.db, syncEverySecond: fsync == .everysec, readOnly: store.db.readOnlyReason != nil,
                                     logger: logger)
        monitor.start()
        self.monitor = monitor
    }

    /// The collections of `directory` with sizes and snapshot states, from the store alone (fast: no
    /// vectors are loaded, no index is built). Refuses a directory a server holds, as opening it would.
    public static func summaries(directory: String) throws -> [CollectionSummary] {
        let store = try LatentStore(directory: directory)
        defer { store.close() }
        return try store.collectionDefinitions().map { name, raw in
            let d = try JSONDecoder().decode(CollectionDefinition.self, from: Data(raw))
            var size = 0
            try store.scanKeys(collection: d.id) { _, _ in size += 1 }
            let snapshot = try store.indexSnapshot(collection: d.id)
            return CollectionSummary(name: name, dimension: d.dimension, metric: d.metric, index: d.index, size: size,
                                     snapshotBytes: snapshot.count, snapshotValid: IndexSnapshot.checksumIsValid(snapshot))
        }
    }

    /// Syncs the WAL, stops the background sync and closes the store. Call once, after the last request.
    public func close() {
        let first: Bool = lock.withLock {
            defer { closed = true }
            return !closed
        }
        guard first else { return }
        let open = all
        for c in open { c.markDropped() } // stops builds and drains; nothing writes after this
        indexer.waitUntilIdle()
        for c in open where c.snapshotDirty { c.saveIndexSnapshot() }
        monitor?.stop()
        do { try store.db.syncWAL() } catch { logger.error("final WAL sync failed: \(error)") }
        // Memtables to SST files: the next start reads sorted files instead of replaying the WAL.
        do { try store.flushAll() } catch { logger.error("final flush failed: \(error)") }
        store.close()
    }

    /// Whether the store takes writes now, and its last storage error (INFO).
    public var storageStatus: StorageStatus? { monitor?.status }

    /// Runs the storage monitor's round now (tests: resume without waiting for the timer).
    public func checkStorageNow() { monitor?.tick() }

    /// Makes every write acknowledged so far durable when the policy asks for it before replies.
    /// Called once per pipelined batch of requests, so synced writes are grouped.
    public func commitBeforeReply() throws {
        guard fsync == .always else { return }
        try storageCall { try store.db.syncWAL() }
    }

    public func collection(_ name: String) -> Collection? {
        lock.lock()
        defer { lock.unlock() }
        return collections[name]
    }

    public func require(_ name: String) throws -> Collection {
        guard let c = collection(name) else { throw EngineError.unknownCollection(name) }
        return c
    }

    public var names: [String] {
        lock.lock()
        defer { lock.unlock() }
        return collections.keys.sorted()
    }

    public var all: [Collection] {
        lock.lock()
        defer { lock.unlock() }
        return Array(collections.values)
    }

    /// Creates a collection; throws `collectionExists` when the name is taken.
    @discardableResult
    public func create(name: String, dimension: Int, metric: Metric, index: IndexSpec = .flat) throws -> Collection {
        try Validation.collectionName(name)
        try Validation.dimension(dimension)
        lock.lock()
        defer { lock.unlock() }
        if collections[name] != nil { throw EngineError.collectionExists(name) }
        return try createLocked(name: name, dimension: dimension, metric: metric, index: index)
    }

    /// The collection `name`, created with `dimension` and COSINE when missing (VADD's behaviour).
    public func collectionCreatingIfMissing(_ name: String, dimension: Int) throws -> Collection {
        try Validation.collectionName(name)
        try Validation.dimension(dimension)
        lock.lock()
        defer { lock.unlock() }
        if let c = collections[name] { return c }
        return try createLocked(name: name, dimension: dimension, metric: .cosine, index: .flat)
    }

    private func createLocked(name: String, dimension: Int, metric: Metric, index: IndexSpec) throws -> Collection {
        let batch = WriteBatch(for: store.db)
        let definition = try storageCall {
            CollectionDefinition(id: try store.reserveCollectionId(in: batch), name: name, dimension: dimension,
                                 metric: metric, index: index.resolved)
        }
        let encoded = try JSONEncoder().encode(definition)
        try storageCall {
            try store.putCollectionDefinition(name: name, Array(encoded), in: batch)
            try store.db.write(batch)
        }
        let c = Collection(definition: definition, store: store, indexer: indexer)
        collections[name] = c
        return c
    }

    /// Rebuilds a collection's index with `spec` in the background (VREBUILD); the definition is stored
    /// first, so a restart builds the requested index too.
    public func rebuild(_ name: String, spec: IndexSpec) throws {
        try rebuild(name) { _ in spec }
    }

    /// As above, with the new spec computed from the current one under the catalog lock (VREBUILD's
    /// merge), so a concurrent rename or drop cannot interleave: the definition is written under the
    /// collection's current name, never under a name it no longer has.
    public func rebuild(_ name: String, spec makeSpec: (IndexSpec) -> IndexSpec) throws {
        let (c, spec): (Collection, IndexSpec) = try lock.withLock {
            guard let c = collections[name] else { throw EngineError.unknownCollection(name) }
            var definition = c.definition
            let spec = makeSpec(definition.index).resolved
            definition.index = spec
            let encoded = try JSONEncoder().encode(definition)
            try c.serializedWrite {
                let batch = WriteBatch(for: store.db)
                try storageCall {
                    try store.putCollectionDefinition(name: name, Array(encoded), in: batch)
                    try store.db.write(batch)
                }
            }
            return (c, spec)
        }
        c.rebuild(with: spec)
    }

    /// Renames `from` to `to` in one WriteBatch, replacing (dropping) any collection named `to`, as Redis'
    /// RENAME does. Writes to `from` wait for the moment of the swap. This is how a load stays atomic:
    /// it fills a staging collection and renames it over the old one only when complete.
    public func rename(_ from: String, to: String) throws {
        try Validation.collectionName(to)
        lock.lock()
        defer { lock.unlock() }
        guard let source = collections[from] else { throw EngineError.unknownCollection(from) }
        guard from != to else { return }
        let target = collections[to]
        let write = {
            try source.serializedWrite {
                var definition = source.definition
                definition.name = to
                let encoded = try JSONEncoder().encode(definition)
                let batch = WriteBatch(for: self.store.db)
                try storageCall {
                    if let target { try self.store.deleteCollection(name: to, id: target.definition.id, in: batch) }
                    try self.store.deleteCollectionDefinition(name: from, in: batch)
                    try self.store.putCollectionDefinition(name: to, Array(encoded), in: batch)
                    try self.store.db.write(batch)
                }
                source.setName(to)
            }
        }
        // The replaced collection is marked dropped in the same step as the batch that deletes it.
        if let target { try target.drop(write) } else { try write() }
        collections[to] = source
        collections[from] = nil
    }

    /// Deletes a collection and all its records. Returns false when it did not exist. When the delete
    /// cannot be written (a full disk), the collection stays listed and usable and the error is thrown.
    @discardableResult
    public func drop(_ name: String) throws -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard let c = collections[name] else { return false }
        try c.drop {
            let batch = WriteBatch(for: store.db)
            try storageCall {
                try store.deleteCollection(name: name, id: c.definition.id, in: batch)
                try store.db.write(batch)
            }
        }
        collections[name] = nil
        return true
    }

    public var memoryBytes: Int { all.reduce(0) { $0 + $1.memoryBytes } }
}
