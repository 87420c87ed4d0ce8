import Collections
import Foundation
import LatentFilter
import LatentIndex
import LatentStorage
import LatentVectors

/// What is stored in the `meta` column family for one collection.
public struct CollectionDefinition: Codable, Equatable, Sendable {
    public var id: UInt32
    public var name: String
    public var dimension: Int
    public var metric: Metric
    public var index: IndexSpec
    /// How VEMB shows vectors (Redis' quant-type); nil in definitions written before it existed: fp32.
    public var encoding: VectorEncoding?
    /// VADD ... REDUCE: inputs of `projection.inputDimension` components are projected to `dimension`.
    public var projection: Projection?
    /// Unix time in milliseconds when the collection expires (EXPIRE and friends); nil: never.
    public var expiresAt: Int64?
    /// Created by a VADD on a missing key (as a Redis vector set): removed when its last element is.
    public var implicit: Bool?
    /// The training parameters of the model the vectors came from (`latentctl load`), for fold-in and VINFO.
    public var model: ModelParameters?

    public init(id: UInt32, name: String, dimension: Int, metric: Metric, index: IndexSpec,
                encoding: VectorEncoding? = nil, projection: Projection? = nil, expiresAt: Int64? = nil, implicit: Bool? = nil,
                model: ModelParameters? = nil) {
        self.model = model
        self.id = id
        self.name = name
        self.dimension = dimension
        self.metric = metric
        self.index = index
        self.encoding = encoding
        self.projection = projection
        self.expiresAt = expiresAt
        self.implicit = implicit
    }
}

/// One search hit as users see it.
public struct SearchHit: Equatable, Sendable {
    public var id: ElementID
    public var score: Double
    /// The element's JSON attributes, bytes as stored.
    public var attributes: [UInt8]?
}

/// A named set of vectors with one dimension, metric and index.
///
/// Concurrency: writes are serialized by `writeMutex` (validation, the RocksDB WriteBatch, then the
/// in-memory update); the in-memory state is guarded by a writer-preferring read-write lock that
/// writers hold only for the memory update, so searches run concurrently and never wait on disk.
/// Index maintenance (Collection+Index.swift) runs in the background and takes the write lock only
/// for short steps.
public final class Collection: @unchecked Sendable {
    public let collectionId: UInt32
    /// Changes only through `CollectionCatalog.rename` (VRENAME, atomic loads); read from any thread.
    public var name: String {
        nameLock.lock()
        defer { nameLock.unlock() }
        return storedName
    }
    private var storedName: String          // guarded by nameLock
    private var storedExpiresAt: Int64?     // guarded by nameLock
    private let nameLock = NSLock()
    /// Unix milliseconds when the collection expires; changed only through the catalog (EXPIRE, PERSIST).
    public var expiresAt: Int64? {
        nameLock.lock()
        defer { nameLock.unlock() }
        return storedExpiresAt
    }
    public let encoding: VectorEncoding
    public let projection: Projection?
    public let model: ModelParameters?
    /// Fold-in's Y^T Y and the write version it was computed at; guarded by `gramLock`.
    private var storedGram: (version: UInt64, gram: [Double])?
    private let gramLock = NSLock()
    var gramCache: (version: UInt64, gram: [Double])? {
        get { gramLock.withLock { storedGram } }
        set { gramLock.withLock { storedGram = newValue } }
    }
    /// The projection's matrix, computed once (empty without a projection).
    let projectionMatrix: [Float]
    public let implicit: Bool
    private var storedVersion: UInt64 = 0    // guarded by versionLock
    private let versionLock = NSLock()
    public let dimension: Int
    public let metric: Metric

    let store: LatentStore
    let indexer: BackgroundIndexer
    private let writeMutex = NSLock()
    /// Serializes writers that help a lagging index (Collection+Index.swift, `helpIndexKeepUp`).
    let helpMutex = NSLock()
    let state = ReadWriteLock()
    // From here to `dropped`: guarded by `state` (reads under its read lock; writes under `writeMutex`
    // + `state`'s write lock, or under the write lock alone for index maintenance). `completedBuilds` too.
    let buffer: VectorBuffer
    var slotOf: [ElementID: UInt32] = [:]
    /// Bytes the id maps hold for their ids (kept as ids come and go, so VINFO, INFO and each metrics
    /// scrape need not walk every id). Guarded by `state`, like the maps.
    var idBytes = 0
    var idOf: [ElementID?] = []
    private var freeSlots: [UInt32] = []
    /// The requested index (VCREATE / VREBUILD); `index` is the one serving now.
    var indexSpec: IndexSpec
    var index: VectorIndex
    /// Slots written since the index last saw them: searched exactly and merged (read-your-writes).
    var pending = OrderedSet<UInt32>()
    /// Every element's attributes as columns, for FILTER (decoded at write and at load).
    let attributeTable = AttributeTable()
    /// Slots that gained or lost an element, for `seenSlots` (Collection+Seen.swift).
    var slotChanges = SlotChangeLog()
    /// Seen lists of this collection's elements as users (own lock), and the seen-slot sets cached for
    /// users of any collection as items of this one (own lock).
    let seenSets = SeenSets()
    let seenSlotCache = SeenSlotCache()
    /// What recent FILTER expressions matched, by attribute-table version (FilterMatchCache.swift).
    let filterMatchCache = FilterMatchCache()
    var build: IndexBuild?
    var drainScheduled = false
    var dropped = false
    /// The serving index changed since its snapshot was saved. Set under the write lock and cleared by
    /// the snapshot writer under the read lock, so it has a lock of its own (`dirtyLock`).
    var snapshotDirty: Bool {
        get { dirtyLock.withLock { storedDirty } }
        set { dirtyLock.withLock { storedDirty = newValue } }
    }
    private var storedDirty = false
    private let dirtyLock = NSLock()
    /// Full index builds swapped in since the collection was opened (VINFO `builds`).
    var completedBuilds = 0

    init(definition: CollectionDefinition, store: LatentStore, indexer: BackgroundIndexer) {
        collectionId = definition.id
        storedName = definition.name
        storedExpiresAt = definition.expiresAt
        encoding = definition.encoding ?? .fp32
        projection = definition.projection
        model = definition.model
        projectionMatrix = definition.projection?.matrix(outputDimension: definition.dimension) ?? []
        implicit = definition.implicit ?? false
        dimension = definition.dimension
        metric = definition.metric
        indexSpec = definition.index
        self.store = store
        self.indexer = indexer
        buffer = VectorBuffer(dimension: definition.dimension, initialCapacity: 16)
        index = IndexFactory.empty(definition.index, metric: definition.metric, dimension: definition.dimension,
                                      buffer: buffer)
    }

    /// The definition as stored in `meta`, with the index spec currently requested.
    public var definition: CollectionDefinition {
        state.withReadLock {
            CollectionDefinition(id: collectionId, name: name, dimension: dimension, metric: metric, index: indexSpec,
                                 encoding: encoding == .fp32 ? nil : encoding, projection: projection, expiresAt: expiresAt,
                                 implicit: implicit ? true : nil, model: model)
        }
    }

    /// Rebuilds the in-memory state from the store (at startup).
    func load() throws {
        var phase = DispatchTime.now().uptimeNanoseconds
        func lap(_ what: String) {
            let now = DispatchTime.now().uptimeNanoseconds
            indexer.logger.debug("load \(name): \(what) \(Double(now - phase) / 1e9) s")
            phase = now
        }
        do {
            try loadRecords(lap)
        } catch let e as StorageError {
            throw EngineError.storage("store damaged: collection '\(name)': \(e.message); restore a backup, or repair the store "
                + "with `ldb --db=DIR repair` (Debian's rocksdb-tools) and accept the loss of the damaged records")
        }
        scheduleIndexMaintenance()
    }

    private func loadRecords(_ lap: (String) -> Void) throws {
        try state.withWriteLock {
            // Slot records are checked before anything is sized from them: a damaged or crafted slot
            // must produce a clear error (or an orphan), never an allocation of billions of entries.
            var idOfSlot: [UInt32: ElementID] = [:]
            try store.scanKeys(collection: collectionId) { bytes, slot in
                let id = ElementID(bytes: bytes)
                if let other = idOfSlot.updateValue(id, forKey: slot) {
                    throw EngineError.storage("store damaged: elements \(other.description) and \(id.description) of '\(name)' "
                        + "both map to slot \(slot) in the keys column family; restore a backup, or delete one of them with "
                        + "`ldb --db=DIR --column_family=keys delete` and restart")
                }
            }
            lap("id map")
            let expectedBytes = dimension * 4
            // Slots are dense (freed slots are reused first), so a store this machine can serve has no slot
            // whose vectors, norms, flags and id map (dimension x 4 + 13 bytes per slot, doubled while
            // growing) would need more than a quarter of its memory: beyond that the slot is damaged.
            let slotLimit = Int(min(UInt64(UInt32.max), ProcessInfo.processInfo.physicalMemory / 4 / UInt64(expectedBytes + 13)))
            var orphanVectors: [UInt32] = []
            try store.scanVectors(collection: collectionId) { slot, bytes in
                guard bytes.count == expectedBytes else {
                    throw EngineError.storage("vector \(slot) of '\(name)' has \(bytes.count) bytes, expected \(expectedBytes)")
                }
                guard let id = idOfSlot[slot] else { orphanVectors.append(slot); return } // no id maps to it
                guard Int(slot) < slotLimit else {
                    throw EngineError.storage("store damaged: element \(id.description) of '\(name)' has slot \(slot), beyond what "
                        + "this machine's memory could hold; restore a backup or delete the element's records")
                }
                if slotOf.updateValue(slot, forKey: id) == nil { idBytes += Self.bytesPerId(id) }
                if Int(slot) >= idOf.count { idOf.append(contentsOf: repeatElement(nil, count: Int(slot) + 1 - idOf.count)) }
                idOf[Int(slot)] = id
                // Invariant for the unwraps below: dimension >= 1 (Validation) and bytes.count == 4 * dimension
                // (checked above), so neither buffer is empty and both base addresses exist.
                withUnsafeTemporaryAllocation(of: Float.self, capacity: dimension) { tmp in
                    #if _endian(little)
                    UnsafeMutableRawPointer(tmp.baseAddress!).copyMemory(from: bytes.baseAddress!, byteCount: expectedBytes)
                    #else
                    for i in 0..<dimension { tmp[i] = Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self))) }
                    #endif
                    buffer.set(slot: Int(slot), tmp.baseAddress!)
                }
            }
            // An id whose vector is missing (or a vector no id maps to) cannot be served: the batch
            // writes both, so only a damaged or hand-edited store has them. They are deleted (so their
            // slots can be reused without two ids claiming one) and reported.
            let orphanIds = idOfSlot.filter { slotOf[$0.value] == nil }
            if !orphanIds.isEmpty || !orphanVectors.isEmpty {
                do {
                    let batch = WriteBatch(for: store.db)
                    for (slot, id) in orphanIds { try store.deleteElement(collection: collectionId, id: id.bytes, slot: slot, in: batch) }
                    for slot in orphanVectors { try store.deleteSlotRecords(collection: collectionId, slot: slot, in: batch) }
                    try store.db.write(batch)
                    indexer.logger.warning("""
                        collection \(name): deleted \(orphanIds.count) element ids without a vector and \(orphanVectors.count) \
                        vectors without an id (a damaged or hand-edited store)
                        """)
                } catch {
                    throw EngineError.storage("""
                        collection \(name) has \(orphanIds.count) element ids without a vector and \(orphanVectors.count) vectors \
                        without an id, and deleting them failed: \(error)
                        """)
                }
            }
            lap("vectors")
            try store.scanAttributes(collection: collectionId) { slot, bytes in
                if slot < idOf.count, idOf[Int(slot)] != nil { attributeTable.set(slot: UInt32(slot), attributes: bytes) }
            }
            lap("attributes")
            try store.scanSeen(collection: collectionId) { user, raw in
                let id = ElementID(bytes: user)
                guard slotOf[id] != nil else { return }  // deleted with its element; never served
                seenSets.replace(id, with: Set(try SeenList.decode(raw)))
            }
            lap("seen lists")
            freeSlots = (0..<idOf.count).reversed().filter { idOf[$0] == nil }.map { UInt32($0) }
            // Until a built index is loaded or built, every vector is searched exactly.
            if !index.scansCollectionBuffer && !loadIndexSnapshotLocked() {
                pending = OrderedSet((0..<buffer.slotCount).filter { buffer.isLive($0) }.map { UInt32($0) })
            }
            lap("index")
        }
    }

    // MARK: Writes

    func withWriter<T>(_ body: () throws -> T) throws -> T {
        writeMutex.lock()
        defer {
            // Bumped after the change is visible: a reader that sees the new version sees the new data.
            versionLock.lock()
            storedVersion &+= 1
            versionLock.unlock()
            writeMutex.unlock()
        }
        if dropped { throw EngineError.collectionDropped(name) }
        return try body()
    }

    /// Increases with every write (result caches compare it).
    public var writeVersion: UInt64 {
        versionLock.lock()
        defer { versionLock.unlock() }
        return storedVersion
    }

    private func vectorBytes(_ v: [Float]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: v.count * 4)
        out.withUnsafeMutableBytes { raw in
            for (i, x) in v.enumerated() { raw.storeBytes(of: x.bitPattern.littleEndian, toByteOffset: i * 4, as: UInt32.self) }
        }
        return out
    }

    /// Adds or replaces an element. Returns true when it was added, false when it replaced one.
    /// `attributes` nil keeps the current attributes; the whole change is one WriteBatch.
    @discardableResult
    public func upsert(id: ElementID, vector: [Float], attributes: [UInt8]? = nil) throws -> Bool {
        try upsert([Upsert(id: id, vector: vector, attributes: attributes.map { .set($0) } ?? .keep)])[0].get()
    }

    /// One element of a batched upsert.
    public struct Upsert: Sendable {
        /// What happens to the element's attributes.
        public enum AttributeChange: Sendable, Equatable {
            /// Kept on an update; none on an insert.
            case keep
            case set([UInt8])
            /// Removed (Redis' `SETATTR ""`).
            case remove
        }
        public var id: ElementID
        public var vector: [Float]
        public var attributes: AttributeChange

        public init(id: ElementID, vector: [Float], attributes: AttributeChange = .keep) {
            self.id = id
            self.vector = vector
            self.attributes = attributes
        }
    }

    /// Inserts or replaces several elements with one RocksDB write (pipelined VADDs, bulk loads): one
    /// result per item, in order, true when the item inserted a new element. An item that fails
    /// validation fails alone; a failed write fails every valid item and changes nothing in memory.
    /// Items apply in order, so an id given twice is inserted by the first and updated by the second.
    public func upsert(_ items: [Upsert]) throws -> [Result<Bool, Error>] {
        var results = [Result<Bool, Error>](repeating: .success(false), count: items.count)
        var valid: [Int] = []
        valid.reserveCapacity(items.count)
        var attributeBytes = [[UInt8]?](repeating: nil, count: items.count)
        for (i, item) in items.enumerated() {
            do {
                try Validation.elementId(item.id)
                try Validation.vector(item.vector, collection: name, dimension: dimension, metric: metric)
                if case .set(let bytes) = item.attributes { attributeBytes[i] = try Validation.attributes(bytes) }
                valid.append(i)
            } catch {
                results[i] = .failure(error)
            }
        }
        guard !valid.isEmpty else { return results }
        defer {
            scheduleIndexMaintenance()
            helpIndexKeepUp(writes: valid.count)
        }
        try withWriter {
            // Slots for new ids come from the free list's end first, then past the last slot, exactly
            // as one-by-one upserts would take them.
            var assigned: [ElementID: UInt32] = [:]
            var freeTaken = 0
            var appended = 0
            var slots = [UInt32](repeating: 0, count: items.count)
            var isNew = [Bool](repeating: false, count: items.count)
            let batch = WriteBatch(for: store.db)
            do {
                try storageCall {
                    for i in valid {
                        let item = items[i]
                        let known = slotOf[item.id] ?? assigned[item.id]
                        let slot: UInt32
                        if let known {
                            slot = known
                        } else if freeTaken < freeSlots.count {
                            slot = freeSlots[freeSlots.count - 1 - freeTaken]
                            freeTaken += 1
                        } else {
                            slot = UInt32(idOf.count + appended)
                            appended += 1
                        }
                        slots[i] = slot
                        isNew[i] = known == nil
                        if known == nil { assigned[item.id] = slot }
                        try store.putVector(collection: collectionId, slot: slot, vectorBytes(item.vector), in: batch)
                        if known == nil { try store.putIdMapping(collection: collectionId, id: item.id.bytes, slot: slot, in: batch) }
                        switch item.attributes {
                        case .set: try store.putAttributes(collection: collectionId, slot: slot, attributeBytes[i], in: batch)
                        case .remove: try store.putAttributes(collection: collectionId, slot: slot, nil, in: batch)
                        // A reused slot may still carry a deleted element's attributes.
                        case .keep: if known == nil { try store.putAttributes(collection: collectionId, slot: slot, nil, in: batch) }
                        }
                    }
                    try store.db.write(batch)
                }
            } catch {
                for i in valid { results[i] = .failure(error) }
                return
            }
            state.withWriteLock {
                for i in valid {
                    let item = items[i], slot = slots[i]
                    if isNew[i] {
                        if freeSlots.last == slot { freeSlots.removeLast() }
                        if Int(slot) == idOf.count { idOf.append(item.id) } else { idOf[Int(slot)] = item.id }
                        slotOf[item.id] = slot
                        idBytes += Self.bytesPerId(item.id)
                        slotChanges.record(slot)
                    }
                    switch item.attributes {
                    case .set: attributeTable.set(slot: slot, attributes: attributeBytes[i] ?? [])
                    case .remove: attributeTable.clear(slot: slot)
                    case .keep: if isNew[i] { attributeTable.clear(slot: slot) }
                    }
                    // The vector was validated to have `dimension` >= 1 components: its base address exists.
                    item.vector.withUnsafeBufferPointer { buffer.set(slot: Int(slot), $0.baseAddress!) }
                    noteChanged(slot: slot, live: true)
                    results[i] = .success(isNew[i])
                }
            }
        }
        return results
    }

    /// Deletes an element with its vector and attributes. Returns false when it did not exist.
    @discardableResult
    public func remove(id: ElementID) throws -> Bool {
        defer { helpIndexKeepUp() }
        return try withWriter {
            guard let slot = slotOf[id] else { return false }
            let batch = WriteBatch(for: store.db)
            try storageCall {
                try store.deleteElement(collection: collectionId, id: id.bytes, slot: slot, in: batch)
                try store.db.write(batch)
            }
            state.withWriteLock {
                if slotOf.removeValue(forKey: id) != nil { idBytes -= Self.bytesPerId(id) }
                idOf[Int(slot)] = nil
                freeSlots.append(slot)
                slotChanges.record(slot)
                seenSets.replace(id, with: [])  // the store batch deleted its seen list too
                attributeTable.clear(slot: slot)
                buffer.clear(slot: Int(slot))
                noteChanged(slot: slot, live: false)
            }
            return true
        }
    }

    /// Sets (or, with an empty string, removes) an element's JSON attributes. False when it does not exist.
    @discardableResult
    public func setAttributes(id: ElementID, json: [UInt8]) throws -> Bool {
        let bytes = json.isEmpty ? nil : try Validation.attributes(json)
        return try withWriter {
            guard let slot = slotOf[id] else { return false }
            let batch = WriteBatch(for: store.db)
            try storageCall {
                try store.putAttributes(collection: collectionId, slot: slot, bytes, in: batch)
                try store.db.write(batch)
            }
            state.withWriteLock { attributeTable.set(slot: slot, attributes: bytes) }
            return true
        }
    }

    /// Marks the collection dropped: later writes fail instead of writing under a deleted prefix, and a
    /// running index build is cancelled.
    func markDropped() {
        writeMutex.lock()
        state.withWriteLock {
            dropped = true
            build?.cancel()
        }
        writeMutex.unlock()
    }

    /// Runs `body` (the store write that deletes the collection) under the writer mutex and marks the
    /// collection dropped only when it succeeded: no write can land between the delete and the mark, and
    /// a delete that failed (a full disk) leaves the collection fully usable.
    func drop(when condition: () -> Bool = { true }, _ body: () throws -> Void) throws {
        writeMutex.lock()
        defer { writeMutex.unlock() }
        if dropped { throw EngineError.collectionDropped(name) }
        guard condition() else { return }
        try body()
        state.withWriteLock {
            dropped = true
            build?.cancel()
        }
        versionLock.lock()
        storedVersion &+= 1
        versionLock.unlock()
    }

    func setName(_ newName: String) {
        nameLock.lock()
        storedName = newName
        nameLock.unlock()
    }

    func setExpiresAt(_ when: Int64?) {
        nameLock.lock()
        storedExpiresAt = when
        nameLock.unlock()
    }

    /// Whether the collection's time to live ran out at `nowMillis`.
    public func isExpired(nowMillis: Int64) -> Bool {
        guard let when = expiresAt else { return false }
        return when <= nowMillis
    }

    /// Runs `body` under the writer mutex (e.g. to persist a changed definition in order with writes).
    func serializedWrite<T>(_ body: () throws -> T) throws -> T { try withWriter(body) }

    // MARK: Reads

    public var count: Int { state.withReadLock { slotOf.count } }

    public func contains(_ id: ElementID) -> Bool { state.withReadLock { slotOf[id] != nil } }

    public func vector(of id: ElementID) -> [Float]? {
        state.withReadLock { slotOf[id].map { buffer.copyVector(Int($0)) } }
    }

    /// The element's JSON attributes, nil when it has none. Throws when the element does not exist.
    public func attributes(of id: ElementID) throws -> [UInt8]? {
        guard let slot = state.withReadLock({ slotOf[id] }) else { throw EngineError.elementNotFound(id) }
        return try attributes(slot: slot)
    }

    func attributes(slot: UInt32) throws -> [UInt8]? {
        try storageCall { try store.attributes(collection: collectionId, slot: slot) }
    }

    /// What VINFO reports.
    public func info() -> CollectionInfo {
        state.withReadLock {
            let indexState: CollectionInfo.IndexState
            if let build {
                indexState = .building(progress: build.progress)
            } else if index.scansCollectionBuffer {
                indexState = .none
            } else {
                indexState = index.isTrained ? .ready : .untrained
            }
            var info = CollectionInfo(
                name: name, metric: metric, dimension: dimension, size: slotOf.count, requested: indexSpec, state: indexState,
                indexed: index.scansCollectionBuffer ? slotOf.count : index.liveCount, pending: pending.count,
                deletedInIndex: index.deletedCount, builds: completedBuilds,
                indexFields: index.infoFields.map { CollectionInfo.IndexField(name: $0.0, value: $0.1) },
                memoryBytes: memoryBytesLocked())
            info.attributeBytes = attributeTable.memoryBytes
            info.vectorBytes = buffer.memoryBytes
            info.indexBytes = index.memoryBytes
            info.seenListUsers = seenSets.userCount
            info.seenListBytes = seenSets.memoryBytes
            info.seenSlotCacheBytes = seenSlotCache.memoryBytes
            info.filterCacheBytes = filterMatchCache.memoryBytes
            info.filterCacheEntries = filterMatchCache.count
            info.filterMatchIndexes = filterMatchCache.matchIndexCount
            return info
        }
    }

    public var memoryBytes: Int { state.withReadLock { memoryBytesLocked() } }

    /// What one id costs in the maps: its array's header and bytes (one copy-on-write buffer shared by both).
    static func bytesPerId(_ id: ElementID) -> Int { 32 + id.count }

    /// Vectors, norms and liveness, plus the two id maps: per id its array's header and bytes (shared by
    /// both maps: one copy-on-write buffer), the map slots and the dictionary's hash table.
    private func memoryBytesLocked() -> Int {
        return buffer.memoryBytes + index.memoryBytes + idOf.count * 8 + slotOf.count * 48 + idBytes + pending.count * 8
            + attributeTable.memoryBytes + seenSets.memoryBytes + seenSlotCache.memoryBytes + filterMatchCache.memoryBytes
    }
}

/// Runs a storage call, turning its error into the engine's typed one.
func storageCall<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let e as StorageError {
        switch e.kind {
        case .writesStopped, .readOnly: throw EngineError.writesRefused(e.message)
        default: throw EngineError.storage(e.message)
        }
    }
}
