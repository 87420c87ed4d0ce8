import Foundation

/// The on-disk layout of a LatentDB data directory: which column families exist, how keys are encoded,
/// and the format version check. docs/storage.md describes the same layout for operators.
///
/// Keys start with a big-endian collection id so one collection's records sort together: loading is a
/// prefix scan and dropping is one range delete per column family.
public enum StoreLayout {
    public static let meta = "meta"
    public static let vectors = "vectors"
    public static let keys = "keys"
    public static let attrs = "attrs"
    public static let index = "index"
    /// Per user element: the items the user rated (for VSIM ... EXCLUDE-SEEN), newline-separated.
    public static let seen = "seen"
    public static let columnFamilies = [meta, vectors, keys, attrs, index, seen]

    /// Bumped whenever the layout changes in a way older code cannot read.
    public static let formatVersion: UInt32 = 1

    static let formatVersionKey = Array("format_version".utf8)
    static let nextCollectionIdKey = Array("next_collection_id".utf8)
    static let collectionPrefix = Array("collection/".utf8)

    public static func collectionKey(_ name: String) -> [UInt8] { collectionPrefix + Array(name.utf8) }

    public static func prefix(_ collection: UInt32) -> [UInt8] { bigEndian(collection) }

    /// vectors/attrs: collection id ++ internal id, both big-endian.
    public static func slotKey(_ collection: UInt32, _ slot: UInt32) -> [UInt8] {
        bigEndian(collection) + bigEndian(slot)
    }

    /// keys: collection id ++ the external id's bytes (as the client sent them).
    public static func idKey(_ collection: UInt32, _ id: [UInt8]) -> [UInt8] { bigEndian(collection) + id }

    public static func bigEndian(_ v: UInt32) -> [UInt8] {
        [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)]
    }

    public static func readBigEndian(_ b: UnsafeRawBufferPointer, at offset: Int) -> UInt32 {
        (UInt32(b[offset]) << 24) | (UInt32(b[offset + 1]) << 16) | (UInt32(b[offset + 2]) << 8) | UInt32(b[offset + 3])
    }
}

/// When the write-ahead log reaches the disk, as Redis' appendfsync.
public enum FsyncPolicy: String, CaseIterable, Sendable {
    /// Before every reply that acknowledges a write (grouped per pipelined batch).
    case always
    /// Once a second in the background; a kill -9 loses nothing, a power loss at most a second.
    case everysec
    /// Left to the OS; a kill -9 still loses nothing since the WAL is written before the reply.
    case no
}

/// A LatentDB data directory opened with every column family, its format version checked.
///
/// Guarding: `db` is thread-safe (RocksDB); `lock` serialises reading and bumping the collection-id
/// counter; `directory` is immutable.
/// How a store is opened: the operator's choices that reach RocksDB.
public struct StoreOptions: Sendable {
    /// See `RocksDBOptions.minFreeDiskBytes` (min-free-disk).
    public var minFreeDiskBytes: UInt64 = 256 << 20
    /// Open even when the WAL is damaged before its end, dropping every write after the damage
    /// (--recover-truncate). Without it such a store is refused and nothing is dropped.
    public var recoverTruncate = false

    public init(minFreeDiskBytes: UInt64 = 256 << 20, recoverTruncate: Bool = false) {
        self.minFreeDiskBytes = minFreeDiskBytes
        self.recoverTruncate = recoverTruncate
    }
}

public final class LatentStore: @unchecked Sendable {
    public let db: RocksDB
    public let directory: String
    private let lock = NSLock()
    /// With --recover-truncate: what the WAL held beyond what was recovered (the writes dropped).
    public private(set) var lastRecoveryReport: String?
    /// Set when opening put back a store whose replacement by a replica's copy was interrupted.
    public private(set) var interruptedInstallReport: String?

    /// Entries of the data directory that are scratch space of a running server (checkpoints for
    /// BACKUP and VERIFY, a replica's incoming copy and the files it replaces): all start with this.
    public static let scratchPrefix = ".latentdb-"

    /// Removes scratch entries a stopped server left behind. Call only once this store is open (RocksDB's
    /// lock is held, so no other server uses the directory). The files a replica's copy replaced are kept:
    /// the copy being opened may still need them back (InstalledBackup); the next install removes them.
    public func removeLeftoverScratch() {
        let fm = FileManager.default
        for name in (try? fm.contentsOfDirectory(atPath: directory)) ?? []
        where name.hasPrefix(Self.scratchPrefix) && name != InstalledBackup.replacedName {
            try? fm.removeItem(atPath: directory + "/" + name)
        }
    }

    /// Opens (or creates, when the directory is missing or empty) a LatentDB store.
    /// Refuses a directory that holds something else, a newer format, or one another process has open.
    public init(directory: String, options storeOptions: StoreOptions = StoreOptions()) throws {
        self.directory = directory
        let fm = FileManager.default
        var isDir: ObjCBool = false
        let exists = fm.fileExists(atPath: directory, isDirectory: &isDir)
        if exists && !isDir.boolValue {
            throw StorageError(.notAStore, "\(directory) is a file, not a LatentDB data directory")
        }
        // A replica that stopped while installing a copy from its leader, before the copy was in place:
        // its own store goes back (it then asks its leader again).
        if exists { interruptedInstallReport = try InstalledBackup.recoverInterrupted(in: directory) }
        let contents = exists ? ((try? fm.contentsOfDirectory(atPath: directory)) ?? []) : []
        let isNew = contents.filter { !$0.hasPrefix(".") }.isEmpty
        if !isNew {
            let looksLikeRocksDB = contents.contains("CURRENT") || contents.contains { $0.hasPrefix("MANIFEST-") }
            guard looksLikeRocksDB else {
                throw StorageError(.notAStore,
                    "\(directory) is not a LatentDB data directory (it is not empty and holds no RocksDB database); "
                    + "choose an empty or new directory with --data-dir")
            }
            let cfs: [String]
            do {
                cfs = try RocksDB.listColumnFamiliesReportingErrors(path: directory)
            } catch let e as StorageError {
                // RocksDB's own files are there but unreadable: a damaged store, not a foreign directory.
                throw StorageError(.damaged,
                    "the RocksDB store in \(directory) is damaged and cannot be opened (\(e.message)); "
                    + "its CURRENT or MANIFEST file is missing or corrupt. Restore the directory from a backup, "
                    + "or try `ldb --db=\(directory) repair` (Debian's rocksdb-tools; writes after the damage may be lost)")
            }
            guard cfs.contains(StoreLayout.meta) else {
                throw StorageError(.notAStore,
                    "\(directory) holds a RocksDB database that is not a LatentDB store (no 'meta' column family)")
            }
        } else if !exists {
            try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        // With --recover-truncate, what the WAL holds is read before RocksDB replays (and then retires) it.
        let walBefore = storeOptions.recoverTruncate ? WALInspector.scan(directory: directory) : []
        do {
            var options = RocksDBOptions(
                columnFamilies: StoreLayout.columnFamilies,
                lz4ColumnFamilies: [StoreLayout.vectors, StoreLayout.attrs, StoreLayout.index, StoreLayout.seen],
                createIfMissing: isNew)
            options.minFreeDiskBytes = storeOptions.minFreeDiskBytes
            options.walRecovery = storeOptions.recoverTruncate ? .pointInTime : .tolerateCorruptedTail
            db = try RocksDB(path: directory, options: options)
        } catch let e as StorageError where e.kind == .locked {
            throw StorageError(.locked,
                "data directory \(directory) is in use by another process (its RocksDB LOCK is held); "
                + "stop the other latentd or choose another --data-dir")
        } catch let e as StorageError where e.message.contains("Corruption") && !storeOptions.recoverTruncate
                    && !WALInspector.scan(directory: directory).allSatisfy({ $0.damageOffset == nil }) {
            // The WAL replay stopped at damage before its last record: the writes after it were
            // acknowledged and would be lost. Refused, with what the damage is and the two ways out.
            throw StorageError(.damaged, """
                the store in \(directory) cannot be opened without losing writes: \(e.message). \
                \(WALInspector.describeDamage(directory: directory)) \
                latentd refuses to start rather than drop acknowledged writes silently. Restore the directory from \
                a backup, or start once with --recover-truncate to keep everything before the damage and drop \
                the writes after it (the log then says how many).
                """)
        } catch let e as StorageError where e.message.contains("Corruption") || e.message.contains("No such file") {
            // A table file (SST) or another file RocksDB reads at open is damaged or missing.
            throw StorageError(.damaged, """
                the store in \(directory) is damaged: \(e.message). Nothing was changed. Restore the directory from a \
                backup; or salvage it with `ldb --db=\(directory) repair` (Debian's rocksdb-tools), which keeps \
                what is readable and loses the damaged file's records.
                """)
        }
        if storeOptions.recoverTruncate {
            let recovered = db.latestSequenceNumber
            let inLog = walBefore.map(\.lastSequence).max() ?? 0
            let damage = walBefore.filter { $0.damageOffset != nil }
            lastRecoveryReport = inLog > recovered
                ? "recovered up to sequence number \(recovered); the WAL held writes up to \(inLog): \(inLog - recovered) operations "
                    + "after the damage were dropped (" + damage.map { "\($0.name) damaged at byte \($0.damageOffset!)" }.joined(separator: ", ") + ")"
                : "recovered up to sequence number \(recovered); nothing after it was found in the WAL, nothing dropped"
        }
        if isNew {
            let batch = WriteBatch(for: db)
            try batch.put(StoreLayout.meta, StoreLayout.formatVersionKey, littleEndian(StoreLayout.formatVersion))
            try db.write(batch, sync: true)
        } else {
            guard let raw = try db.get(StoreLayout.meta, StoreLayout.formatVersionKey), raw.count == 4 else {
                db.close()
                throw StorageError(.notAStore, "\(directory) has no LatentDB format version; it is not a LatentDB store")
            }
            let version = UInt32(raw[0]) | UInt32(raw[1]) << 8 | UInt32(raw[2]) << 16 | UInt32(raw[3]) << 24
            if version > StoreLayout.formatVersion {
                db.close()
                throw StorageError(.newerFormat,
                    "\(directory) has format version \(version), newer than this latentd supports "
                    + "(\(StoreLayout.formatVersion)); upgrade latentd")
            }
        }
    }

    public func close() { db.close() }

    /// Every collection definition, as stored by `putCollection`.
    public func collectionDefinitions() throws -> [(name: String, definition: [UInt8])] {
        var out: [(String, [UInt8])] = []
        try db.scan(StoreLayout.meta, prefix: StoreLayout.collectionPrefix) { k, v in
            let name = String(decoding: k[StoreLayout.collectionPrefix.count...], as: UTF8.self)
            out.append((name, Array(v)))
            return true
        }
        return out
    }

    /// Hands out collection ids; never reused, so a dropped collection's range deletes cannot touch a new one.
    public func allocateCollectionId() throws -> UInt32 {
        lock.lock()
        defer { lock.unlock() }
        var next: UInt32 = 1
        if let raw = try db.get(StoreLayout.meta, StoreLayout.nextCollectionIdKey), raw.count == 4 {
            next = UInt32(raw[0]) | UInt32(raw[1]) << 8 | UInt32(raw[2]) << 16 | UInt32(raw[3]) << 24
        }
        let batch = WriteBatch(for: db)
        try batch.put(StoreLayout.meta, StoreLayout.nextCollectionIdKey, littleEndian(next + 1))
        try db.write(batch)
        return next
    }

    /// Reserves the next collection id by adding the counter's update to `batch`, so the id and the
    /// definition that uses it are written together. Callers serialise reservations (the catalog lock).
    public func reserveCollectionId(in batch: WriteBatch) throws -> UInt32 {
        lock.lock()
        defer { lock.unlock() }
        var next: UInt32 = 1
        if let raw = try db.get(StoreLayout.meta, StoreLayout.nextCollectionIdKey), raw.count == 4 {
            next = UInt32(raw[0]) | UInt32(raw[1]) << 8 | UInt32(raw[2]) << 16 | UInt32(raw[3]) << 24
        }
        guard next < UInt32.max else { throw StorageError(.rocksdb, "collection ids are exhausted (4,294,967,295 created)") }
        try batch.put(StoreLayout.meta, StoreLayout.nextCollectionIdKey, littleEndian(next + 1))
        return next
    }

    /// Adds a collection definition (its encoded form) under `name` to `batch`.
    public func putCollectionDefinition(name: String, _ encoded: [UInt8], in batch: WriteBatch) throws {
        try batch.put(StoreLayout.meta, StoreLayout.collectionKey(name), encoded)
    }

    /// Adds the removal of `name`'s definition (only: the records stay, as a rename needs) to `batch`.
    public func deleteCollectionDefinition(name: String, in batch: WriteBatch) throws {
        try batch.delete(StoreLayout.meta, StoreLayout.collectionKey(name))
    }

    /// Adds the records that delete a whole collection to `batch`.
    public func deleteCollection(name: String, id: UInt32, in batch: WriteBatch) throws {
        try batch.delete(StoreLayout.meta, StoreLayout.collectionKey(name))
        let p = StoreLayout.prefix(id)
        for cf in [StoreLayout.vectors, StoreLayout.keys, StoreLayout.attrs, StoreLayout.index, StoreLayout.seen] {
            try batch.deletePrefix(cf, p)
        }
    }

    // MARK: Element records (the engine says what to write; the keys are built here)

    /// Adds an element's vector (float32 little-endian bytes) at `slot` to `batch`.
    public func putVector(collection: UInt32, slot: UInt32, _ bytes: [UInt8], in batch: WriteBatch) throws {
        try batch.put(StoreLayout.vectors, StoreLayout.slotKey(collection, slot), bytes)
    }

    /// Adds the id -> slot mapping of a new element to `batch`.
    public func putIdMapping(collection: UInt32, id: [UInt8], slot: UInt32, in batch: WriteBatch) throws {
        try batch.put(StoreLayout.keys, StoreLayout.idKey(collection, id), StoreLayout.bigEndian(slot))
    }

    /// Adds an element's attributes (nil: their removal) to `batch`.
    public func putAttributes(collection: UInt32, slot: UInt32, _ bytes: [UInt8]?, in batch: WriteBatch) throws {
        let key = StoreLayout.slotKey(collection, slot)
        if let bytes { try batch.put(StoreLayout.attrs, key, bytes) } else { try batch.delete(StoreLayout.attrs, key) }
    }

    /// Adds the removal of every record of an element (id mapping, seen list, vector, attributes) to `batch`.
    public func deleteElement(collection: UInt32, id: [UInt8], slot: UInt32, in batch: WriteBatch) throws {
        try batch.delete(StoreLayout.keys, StoreLayout.idKey(collection, id))
        try batch.delete(StoreLayout.seen, StoreLayout.idKey(collection, id))
        try batch.delete(StoreLayout.vectors, StoreLayout.slotKey(collection, slot))
        try batch.delete(StoreLayout.attrs, StoreLayout.slotKey(collection, slot))
    }

    /// Adds the removal of a slot's vector and attributes to `batch` (records no id maps to).
    public func deleteSlotRecords(collection: UInt32, slot: UInt32, in batch: WriteBatch) throws {
        try batch.delete(StoreLayout.vectors, StoreLayout.slotKey(collection, slot))
        try batch.delete(StoreLayout.attrs, StoreLayout.slotKey(collection, slot))
    }

    /// Adds the removal of an element's seen list to `batch`.
    public func deleteSeen(collection: UInt32, id: [UInt8], in batch: WriteBatch) throws {
        try batch.delete(StoreLayout.seen, StoreLayout.idKey(collection, id))
    }

    /// Adds an element's seen list (already encoded) to `batch`.
    public func putSeen(collection: UInt32, id: [UInt8], _ encoded: [UInt8], in batch: WriteBatch) throws {
        try batch.put(StoreLayout.seen, StoreLayout.idKey(collection, id), encoded)
    }

    public func seen(collection: UInt32, id: [UInt8]) throws -> [UInt8]? {
        try db.get(StoreLayout.seen, StoreLayout.idKey(collection, id))
    }

    // MARK: Index snapshots

    /// Adds the replacement of a collection's index snapshot by `chunks` (in order) to `batch`.
    public func replaceIndexSnapshot(collection: UInt32, chunks: [ArraySlice<UInt8>], in batch: WriteBatch) throws {
        try batch.deletePrefix(StoreLayout.index, StoreLayout.prefix(collection))
        for (i, chunk) in chunks.enumerated() {
            let key = StoreLayout.prefix(collection) + StoreLayout.bigEndian(UInt32(i))
            try chunk.withUnsafeBytes { try batch.put(StoreLayout.index, key, $0) }
        }
    }

    /// A collection's index snapshot, its chunks concatenated (empty when there is none).
    public func indexSnapshot(collection: UInt32, reservingCapacity: Int = 0) throws -> [UInt8] {
        var data: [UInt8] = []
        data.reserveCapacity(reservingCapacity)
        try db.scan(StoreLayout.index, prefix: StoreLayout.prefix(collection)) { _, value in
            data.append(contentsOf: value)
            return true
        }
        return data
    }

    /// Writes the index column family's memtable to SST files (snapshots are large: a restart then
    /// reads sorted files instead of replaying them from the WAL).
    public func flushIndexSnapshots() throws { try db.flush([StoreLayout.index]) }

    /// Every column family's memtable to SST files (at shutdown: the next start reads sorted files).
    public func flushAll() throws { try db.flush(StoreLayout.columnFamilies) }

    /// One column family's manual compaction, as `compact` reports it.
    public struct CompactionStep: Sendable {
        public let columnFamily: String
        public let sstBytesBefore: UInt64
        public let sstBytesAfter: UInt64
        public let seconds: Double
    }

    /// Compacts one collection's records (its key range in each per-collection column family) or, with
    /// nil, the whole store; `progress(step, done, total)` is called after each column family.
    public func compact(collection: UInt32?, progress: (CompactionStep, Int, Int) -> Void = { _, _, _ in }) throws -> [CompactionStep] {
        let families = collection == nil ? StoreLayout.columnFamilies
            : [StoreLayout.vectors, StoreLayout.keys, StoreLayout.attrs, StoreLayout.index, StoreLayout.seen]
        let start = collection.map { StoreLayout.prefix($0) }
        let limit = collection.flatMap { $0 == .max ? nil : StoreLayout.prefix($0 + 1) }
        var steps: [CompactionStep] = []
        for (i, cf) in families.enumerated() {
            let before = db.sstBytes(cf)
            let began = DispatchTime.now().uptimeNanoseconds
            try db.compact(cf, from: start, to: limit)
            let step = CompactionStep(columnFamily: cf, sstBytesBefore: before, sstBytesAfter: db.sstBytes(cf),
                                      seconds: Double(DispatchTime.now().uptimeNanoseconds - began) / 1e9)
            steps.append(step)
            progress(step, i + 1, families.count)
        }
        return steps
    }

    /// Streams a collection's vectors: (internal id, float32 little-endian bytes).
    public func scanVectors(collection: UInt32, _ body: (UInt32, UnsafeRawBufferPointer) throws -> Void) throws {
        try db.scan(StoreLayout.vectors, prefix: StoreLayout.prefix(collection)) { k, v in
            guard k.count == 8 else { throw StorageError(.rocksdb, "corrupt vector key of \(k.count) bytes") }
            try body(StoreLayout.readBigEndian(k, at: 4), v)
            return true
        }
    }

    /// Streams a collection's id map: (external id, internal id).
    public func scanKeys(collection: UInt32, _ body: ([UInt8], UInt32) throws -> Void) throws {
        try db.scan(StoreLayout.keys, prefix: StoreLayout.prefix(collection)) { k, v in
            guard v.count == 4 else { throw StorageError(.rocksdb, "corrupt id map value of \(v.count) bytes") }
            try body(Array(k[4...]), StoreLayout.readBigEndian(v, at: 0))
            return true
        }
    }

    /// Streams a collection's element ids in byte order from `from` (inclusive; nil: the first);
    /// `body` returns false to stop.
    public func scanIds(collection: UInt32, from: [UInt8]?, _ body: ([UInt8]) throws -> Bool) throws {
        let prefix = StoreLayout.prefix(collection)
        try db.scan(StoreLayout.keys, prefix: prefix, from: from.map { prefix + $0 }) { k, _ in
            try body(Array(k[4...]))
        }
    }

    /// Calls `body` with every stored seen list of a collection: the user element's id and the encoded list.
    public func scanSeen(collection: UInt32, _ body: ([UInt8], [UInt8]) throws -> Void) throws {
        try db.scan(StoreLayout.seen, prefix: StoreLayout.prefix(collection)) { k, v in
            try body(Array(k[4...]), Array(v))
            return true
        }
    }

    /// Streams a collection's attributes: (internal id, bytes as stored).
    public func scanAttributes(collection: UInt32, _ body: (UInt32, [UInt8]) throws -> Void) throws {
        try db.scan(StoreLayout.attrs, prefix: StoreLayout.prefix(collection)) { k, v in
            guard k.count == 8 else { throw StorageError(.rocksdb, "corrupt attributes key of \(k.count) bytes") }
            try body(StoreLayout.readBigEndian(k, at: 4), Array(v))
            return true
        }
    }

    /// How many elements of a collection have attributes (a scan of its attribute keys).
    public func countAttributes(collection: UInt32) throws -> Int {
        var n = 0
        try db.scan(StoreLayout.attrs, prefix: StoreLayout.prefix(collection)) { _, _ in n += 1; return true }
        return n
    }

    public func attributes(collection: UInt32, slot: UInt32) throws -> [UInt8]? {
        try db.get(StoreLayout.attrs, StoreLayout.slotKey(collection, slot))
    }
}

func littleEndian(_ v: UInt32) -> [UInt8] {
    [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF), UInt8((v >> 16) & 0xFF), UInt8(v >> 24)]
}
