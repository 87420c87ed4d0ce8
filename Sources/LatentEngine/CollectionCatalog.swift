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
    /// Background users of the store outside any request (VERIFY's and BACKUP's checkpoints) hold
    /// `storeUseLock`; `close()` takes it to set `storeClosing`, so it waits for one in progress and no
    /// new one starts. `storeClosing` is guarded by `storeUseLock`.
    private let storeUseLock = NSLock()
    private var storeClosing = false
    /// Collections dropped because their time to live ran out (INFO expired_keys); guarded by `lock`.
    private var expired = 0
    private var reaper: DispatchSourceTimer?
    /// Whether expired collections are hidden and dropped (a leader); a replica keeps them until its
    /// leader's DEL arrives, as a Redis replica does not expire keys itself. Guarded by `lock`.
    private var expiring = true
    /// Told the name of each collection dropped because its time ran out, inside `writeOrder` (a
    /// leader's replication log turns it into a DEL in the stream). Guarded by `lock`.
    private var expiredDropObserver: ((String) -> Void)?
    /// Orders writes for replication: the server runs each write command inside `ordered`, and expiry
    /// drops take it too, so the replication stream's order is the order writes reached the store.
    /// Recursive: an expiry noticed inside a write command is dropped inside that command's turn.
    private let writeOrder = NSRecursiveLock()

    /// Opens the store at `directory` and loads every collection into memory.
    public init(directory: String, fsync: FsyncPolicy = .everysec, storage: StoreOptions = StoreOptions(),
                logger: Logger = Logger(label: "latentdb.engine")) throws {
        self.fsync = fsync
        self.logger = logger
        indexer = BackgroundIndexer(logger: logger)
        store = try LatentStore(directory: directory, options: storage)
        if let report = store.lastRecoveryReport { logger.critical("--recover-truncate: \(report)") }
        if let report = store.interruptedInstallReport { logger.warning("\(report)") }
        store.removeLeftoverScratch()
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
        startReaper()
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
    /// Runs `body` (a checkpoint) under `storeUseLock`, unless the store is closing (then an error): not
    /// under `lock`, which every request takes to find its collection and must not wait for a checkpoint.
    func withOpenStore<T>(_ body: () throws -> T) throws -> T {
        try storeUseLock.withLock {
            guard !storeClosing else { throw EngineError.storage("the store is closed (the server is shutting down)") }
            return try body()
        }
    }

    public func close() {
        let first: Bool = lock.withLock {
            defer { closed = true }
            return !closed
        }
        guard first else { return }
        storeUseLock.withLock { storeClosing = true }
        reaper?.setEventHandler(handler: nil)
        reaper?.cancel()
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

    /// RocksDB's memtables, table readers and block cache now (INFO memory).
    public var storageMemory: StorageMemory { store.db.memoryUsage }

    /// Runs the storage monitor's round now (tests: resume without waiting for the timer).
    public func checkStorageNow() { monitor?.tick() }

    /// Makes every write acknowledged so far durable when the policy asks for it before replies.
    /// Called once per pipelined batch of requests, so synced writes are grouped.
    public func commitBeforeReply() throws {
        guard fsync == .always else { return }
        try storageCall { try store.db.syncWAL() }
    }

    /// The collection named `name`; nil when there is none or its time to live ran out (then it is
    /// dropped now, as Redis expires a key on access).
    public func collection(_ name: String) -> Collection? {
        lock.lock()
        let found = collections[name], hiding = expiring
        lock.unlock()
        guard let c = found else { return nil }
        if hiding, c.expiresAt != nil, c.isExpired(nowMillis: Self.nowMillis()) {
            // Only when no other thread is writing: a reader may hold collection locks a writer waits
            // for. Otherwise it stays hidden and the reaper drops it within a quarter second.
            dropExpired(name, c, wait: false)
            return nil
        }
        return c
    }

    /// Runs a write (a whole command) in the catalog's write order; see `writeOrder`.
    public func ordered<T>(_ body: () throws -> T) rethrows -> T {
        writeOrder.lock()
        defer { writeOrder.unlock() }
        return try body()
    }

    /// Whether expired collections are hidden and dropped here (false on a replica).
    public var expires: Bool {
        get { lock.withLock { expiring } }
        set { lock.withLock { expiring = newValue } }
    }

    /// Sets the observer told of every collection dropped because its time ran out.
    public func observeExpiredDrops(_ observer: ((String) -> Void)?) {
        lock.withLock { expiredDropObserver = observer }
    }

    public func require(_ name: String) throws -> Collection {
        guard let c = collection(name) else { throw EngineError.unknownCollection(name) }
        return c
    }

    /// Names of the live collections, sorted (expired ones are left out).
    public var names: [String] { all.map(\.name).sorted() }

    /// The live collections (expired ones are left out).
    public var all: [Collection] {
        let now = Self.nowMillis()
        lock.lock()
        let values = Array(collections.values), hiding = expiring
        lock.unlock()
        return hiding ? values.filter { !$0.isExpired(nowMillis: now) } : values
    }

    /// Collections dropped because their time to live ran out, since start.
    public var expiredCount: Int { lock.withLock { expired } }

    public static func nowMillis() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded(.down)) }

    /// Drops `c` if it is still the collection named `name` and still expired. A drop that cannot be
    /// written (a full disk) leaves it hidden (every lookup sees it expired) and is tried again later.
    private func dropExpired(_ name: String, _ c: Collection, wait: Bool) {
        if wait { writeOrder.lock() } else if !writeOrder.try() { return }
        defer { writeOrder.unlock() }
        let observer: ((String) -> Void)?? = lock.withLock {
            guard expiring, collections[name] === c, c.isExpired(nowMillis: Self.nowMillis()) else { return nil }
            do {
                try dropLocked(name, c)
                expired += 1
                return .some(expiredDropObserver)
            } catch {
                logger.error("expired collection \(name) could not be dropped: \(error)")
                return nil
            }
        }
        if let observer { observer?(name) }
    }

    /// Drops expired collections four times a second (Redis' active expiry), so an expired collection
    /// nobody reads still frees its memory and disk.
    private func startReaper() {
        let timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "latentdb.expiry", qos: .utility))
        timer.schedule(deadline: .now() + .milliseconds(250), repeating: .milliseconds(250), leeway: .milliseconds(50))
        // A strong capture, released by close() (cancel + clearing the handler): a weak one leaves a weak
        // side table that LeakSanitizer reports at the fuzzer's exit (as StorageMonitor's did).
        timer.setEventHandler { self.reapExpired() }
        timer.resume()
        reaper = timer
    }

    /// Drops every collection whose time to live ran out; returns how many.
    @discardableResult
    public func reapExpired() -> Int {
        let now = Self.nowMillis()
        let due: [String: Collection] = lock.withLock { expiring ? collections.filter { $0.value.isExpired(nowMillis: now) } : [:] }
        for (name, c) in due { dropExpired(name, c, wait: true) }
        return due.count
    }

    /// Sets (or with nil, removes) a collection's expiry time, in unix milliseconds, persisted with its
    /// definition. A time already past drops the collection, as Redis deletes the key. False when
    /// there is no such collection.
    @discardableResult
    public func setExpiry(_ name: String, at when: Int64?) throws -> Bool {
        guard let c = collection(name) else { return false }
        if let when, when <= Self.nowMillis() {
            lock.lock()
            defer { lock.unlock() }
            guard collections[name] === c else { return false }
            try dropLocked(name, c)
            expired += 1
            return true
        }
        try lock.withLock {
            guard collections[name] === c else { throw EngineError.unknownCollection(name) }
            try c.serializedWrite {
                var definition = c.definition
                definition.expiresAt = when
                let encoded = try JSONEncoder().encode(definition)
                let batch = WriteBatch(for: store.db)
                try storageCall {
                    try store.putCollectionDefinition(name: name, Array(encoded), in: batch)
                    try store.db.write(batch)
                }
                c.setExpiresAt(when)
            }
        }
        return true
    }

    /// Drops every collection (FLUSHDB / FLUSHALL); returns how many there were.
    @discardableResult
    public func dropAll() throws -> Int {
        lock.lock()
        defer { lock.unlock() }
        let all = collections
        for (name, c) in all { try dropLocked(name, c) }
        return all.count
    }

    /// Creates a collection; throws `collectionExists` when the name is taken.
    @discardableResult
    public func create(name: String, dimension: Int, metric: Metric, index: IndexSpec = .flat,
                       model: ModelParameters? = nil) throws -> Collection {
        try Validation.collectionName(name)
        try Validation.dimension(dimension)
        lock.lock()
        defer { lock.unlock() }
        if collections[name] != nil { throw EngineError.collectionExists(name) }
        return try createLocked(name: name, dimension: dimension, metric: metric, index: index, model: model)
    }

    /// What a VADD on a missing key creates, as Redis creates a vector set: COSINE, HNSW with VADD's M,
    /// the encoding VADD names (Redis' default Q8), and REDUCE's projection.
    public struct ImplicitCreation: Sendable {
        public var dimension: Int
        public var encoding: VectorEncoding
        public var m: Int?
        public var projection: Projection?
        public init(dimension: Int, encoding: VectorEncoding, m: Int?, projection: Projection?) {
            self.dimension = dimension
            self.encoding = encoding
            self.m = m
            self.projection = projection
        }
    }

    /// The collection `name`, created as `creation` says when missing (VADD's behaviour); `created`
    /// tells which happened.
    public func collectionCreatingIfMissing(_ name: String, _ creation: ImplicitCreation) throws -> (Collection, created: Bool) {
        try Validation.collectionName(name)
        try Validation.dimension(creation.dimension)
        if let c = collection(name) { return (c, false) }
        lock.lock()
        defer { lock.unlock() }
        if let c = collections[name] { return (c, false) }
        let index = IndexSpec(kind: .hnsw, m: creation.m)
        return (try createLocked(name: name, dimension: creation.dimension, metric: .cosine, index: index,
                                 encoding: creation.encoding, projection: creation.projection, implicit: true), true)
    }

    private func createLocked(name: String, dimension: Int, metric: Metric, index: IndexSpec, encoding: VectorEncoding? = nil,
                              projection: Projection? = nil, implicit: Bool = false, model: ModelParameters? = nil) throws -> Collection {
        let batch = WriteBatch(for: store.db)
        let definition = try storageCall {
            CollectionDefinition(id: try store.reserveCollectionId(in: batch), name: name, dimension: dimension,
                                 metric: metric, index: index.resolved, encoding: encoding == .fp32 ? nil : encoding,
                                 projection: projection, implicit: implicit ? true : nil, model: model)
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
    /// With `onlyIfAbsent` (RENAMENX) nothing happens when `to` exists, and false is returned.
    @discardableResult
    public func rename(_ from: String, to: String, onlyIfAbsent: Bool = false) throws -> Bool {
        try Validation.collectionName(to)
        // Expired collections go first, so neither side of the rename is one.
        _ = collection(from)
        _ = collection(to)
        lock.lock()
        defer { lock.unlock() }
        guard let source = collections[from] else { throw EngineError.unknownCollection(from) }
        guard from != to else { return !onlyIfAbsent }
        let target = collections[to]
        if onlyIfAbsent && target != nil { return false }
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
        return true
    }

    /// Deletes a collection and all its records. Returns false when it did not exist. When the delete
    /// cannot be written (a full disk), the collection stays listed and usable and the error is thrown.
    @discardableResult
    public func drop(_ name: String) throws -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard let c = collections[name] else { return false }
        try dropLocked(name, c)
        return true
    }

    /// Drops `name` only if it is a VADD-created collection with no elements left (Redis deletes a vector
    /// set with its last element). Runs under the collection's writer mutex, so a concurrent VADD either
    /// lands first (and the collection stays) or finds it dropped.
    @discardableResult
    public func dropIfEmptyImplicit(_ name: String) throws -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard let c = collections[name], c.implicit else { return false }
        var dropped = false
        try c.drop(when: { c.count == 0 }) {  // under the writer mutex: the count cannot change meanwhile
            let batch = WriteBatch(for: store.db)
            try storageCall {
                try store.deleteCollection(name: name, id: c.definition.id, in: batch)
                try store.db.write(batch)
            }
            dropped = true
        }
        if dropped { collections[name] = nil }
        return dropped
    }

    /// Caller holds `lock`.
    private func dropLocked(_ name: String, _ c: Collection) throws {
        try c.drop {
            let batch = WriteBatch(for: store.db)
            try storageCall {
                try store.deleteCollection(name: name, id: c.definition.id, in: batch)
                try store.db.write(batch)
            }
        }
        collections[name] = nil
    }

    public var memoryBytes: Int { all.reduce(0) { $0 + $1.memoryBytes } }
}
