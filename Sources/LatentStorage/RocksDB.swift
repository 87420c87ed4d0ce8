import CRocksDB
import CRocksDBExtras
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An error reported by RocksDB, or by this wrapper around it.
public struct StorageError: Error, CustomStringConvertible, Equatable {
    public enum Kind: Equatable, Sendable {
        /// Another process (or another handle in this one) holds the directory's LOCK file.
        case locked
        /// The directory exists but is not a LatentDB store.
        case notAStore
        /// The store was written by a newer LatentDB.
        case newerFormat
        /// A RocksDB store whose own files (CURRENT, MANIFEST) are damaged.
        case damaged
        /// RocksDB stopped taking writes after a storage error (a full disk); reads work, writes resume
        /// once RocksDB can resume.
        case writesStopped
        /// The store was opened read-only (the disk was full at startup): writes need a restart.
        case readOnly
        /// Anything else RocksDB reported (I/O, corruption, ...).
        case rocksdb
    }
    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}

/// Runs `body` with a RocksDB `errptr`, turning a reported error into a thrown `StorageError`.
/// RocksDB allocates the message with malloc; it is released with `rocksdb_free` as the C API asks.
@inline(__always)
func checked<T>(_ context: String, _ body: (UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> T) throws -> T {
    var err: UnsafeMutablePointer<CChar>? = nil
    let result = body(&err)
    if let err {
        let message = String(cString: err)
        rocksdb_free(err)
        let kind: StorageError.Kind = message.contains("lock") && message.contains("LOCK") ? .locked : .rocksdb
        throw StorageError(kind, "\(context): \(message)")
    }
    return result
}

/// Options used to open a database: explicit, so what the store does is visible in one place.
public struct RocksDBOptions: Sendable {
    /// Column families to create when missing. Existing ones are always opened, whatever this lists.
    public var columnFamilies: [String]
    /// Column families whose blocks are LZ4-compressed.
    public var lz4ColumnFamilies: Set<String>
    public var createIfMissing: Bool
    public var blockCacheBytes: Int
    /// How the WAL is replayed at open. The default stops at damage with an error instead of silently
    /// dropping the writes after it (RocksDB's own default, point-in-time, drops them).
    public var walRecovery: WALRecovery = .tolerateCorruptedTail
    /// When opening read-write fails for lack of disk space, open read-only instead (reads served,
    /// writes refused) rather than not at all.
    public var readOnlyWhenFull = true
    /// Writes are refused (and an existing store opens read-only) while the directory's file system has
    /// less free space than this: RocksDB itself never meets ENOSPC from LatentDB's own writes, since
    /// its error paths after a failed WAL append abort in Debian's build (assertions kept), and it needs
    /// room to switch its WAL (preallocated) and flush memtables. 0 turns the guard off.
    public var minFreeDiskBytes: UInt64 = 256 << 20
    /// Memtable bytes per column family, and for all of them together (RocksDB's write buffer manager):
    /// RSS and the space a WAL switch preallocates stay bounded by these.
    public var writeBufferBytes = 32 << 20
    public var totalWriteBufferBytes = 64 << 20

    /// RocksDB's WALRecoveryMode, the two LatentDB uses.
    public enum WALRecovery: Int32, Sendable {
        /// Only an incomplete last record (a write torn by a crash, never acknowledged under fsync
        /// always) is ignored; damage anywhere else fails the open.
        case tolerateCorruptedTail = 0
        /// Replays up to the first damage and drops everything after it (--recover-truncate).
        case pointInTime = 2
    }

    public init(columnFamilies: [String], lz4ColumnFamilies: Set<String> = [], createIfMissing: Bool = true,
                blockCacheBytes: Int = 64 << 20) {
        self.columnFamilies = columnFamilies
        self.lz4ColumnFamilies = lz4ColumnFamilies
        self.createIfMissing = createIfMissing
        self.blockCacheBytes = blockCacheBytes
    }
}

/// A small, safe Swift face of RocksDB's C API: one database with named column families.
///
/// Thread-safe as RocksDB is: reads, writes and iterators may be used from any thread.
/// `close()` must only be called once no other thread uses the handle.
/// Guarding: `db`, `handles` and `cfOptions` are written only in init and `close()`; `readOnlyReason` only in init; `spaceCheckedAt` and `spaceFree` are guarded by `spaceLock` (which the caller
/// runs after the last use, as above); the option handles are immutable.
/// RocksDB's own memory, as its properties report it.
public struct StorageMemory: Sendable, Equatable {
    public var memtableBytes: UInt64 = 0
    public var tableReaderBytes: UInt64 = 0
    public var blockCacheBytes: UInt64 = 0
    public var blockCachePinnedBytes: UInt64 = 0
    public init() {}
}

public final class RocksDB: @unchecked Sendable {
    private var db: OpaquePointer?
    private var handles: [String: OpaquePointer] = [:]
    private var cfOptions: [OpaquePointer] = []
    private let dbOptions: OpaquePointer
    private let blockCache: OpaquePointer
    private let tableOptions: OpaquePointer
    private let readOptions: OpaquePointer
    private let writeOptions: OpaquePointer
    private let syncWriteOptions: OpaquePointer
    public let path: String
    /// Opened read-only because the disk was full (`RocksDBOptions.readOnlyWhenFull`); why, for messages.
    public private(set) var readOnlyReason: String?
    let minFreeDiskBytes: UInt64
    private let spaceLock = NSLock()
    private var spaceCheckedAt: UInt64 = 0   // guarded by spaceLock
    private var spaceFree: UInt64 = .max     // guarded by spaceLock

    public init(path: String, options: RocksDBOptions) throws {
        self.path = path
        dbOptions = rocksdb_options_create()
        rocksdb_options_set_wal_recovery_mode(dbOptions, options.walRecovery.rawValue)
        rocksdb_options_set_write_buffer_size(dbOptions, options.writeBufferBytes)
        rocksdb_options_set_db_write_buffer_size(dbOptions, options.totalWriteBufferBytes)
        minFreeDiskBytes = options.minFreeDiskBytes
        rocksdb_options_set_create_if_missing(dbOptions, options.createIfMissing ? 1 : 0)
        rocksdb_options_set_create_missing_column_families(dbOptions, 1)
        rocksdb_options_increase_parallelism(dbOptions, 2)
        rocksdb_options_set_keep_log_file_num(dbOptions, 5)
        blockCache = rocksdb_cache_create_lru(options.blockCacheBytes)
        tableOptions = rocksdb_block_based_options_create()
        rocksdb_block_based_options_set_block_cache(tableOptions, blockCache)
        rocksdb_options_set_block_based_table_factory(dbOptions, tableOptions)
        readOptions = rocksdb_readoptions_create()
        writeOptions = rocksdb_writeoptions_create()
        syncWriteOptions = rocksdb_writeoptions_create()
        rocksdb_writeoptions_set_sync(syncWriteOptions, 1)

        // Every column family that exists must be opened, or RocksDB refuses the whole database.
        var names = options.columnFamilies
        if !names.contains("default") { names.insert("default", at: 0) }
        var count = 0
        var listErr: UnsafeMutablePointer<CChar>? = nil
        if let existing = rocksdb_list_column_families(dbOptions, path, &count, &listErr) {
            for i in 0..<count {
                if let cName = existing[i] {
                    let name = String(cString: cName)
                    if !names.contains(name) { names.append(name) }
                }
            }
            rocksdb_list_column_families_destroy(existing, count)
        }
        if let listErr { rocksdb_free(listErr) } // a new directory has no column families yet

        for name in names {
            let o = rocksdb_options_create_copy(dbOptions)!
            if options.lz4ColumnFamilies.contains(name) {
                rocksdb_options_set_compression(o, Int32(rocksdb_lz4_compression))
            }
            cfOptions.append(o)
        }
        var cNames: [UnsafePointer<CChar>?] = names.map { UnsafePointer(strdup($0)) }
        defer { for p in cNames { free(UnsafeMutablePointer(mutating: p)) } }
        var optPtrs: [OpaquePointer?] = cfOptions.map { Optional($0) }
        var outHandles = [OpaquePointer?](repeating: nil, count: names.count)
        // An existing store on a disk already below the reserve opens read-only at once: a read-write
        // open would preallocate a new WAL and could meet ENOSPC inside RocksDB.
        let free = RocksDB.freeBytes(path)
        let existing = options.createIfMissing == false
        if existing, options.readOnlyWhenFull, options.minFreeDiskBytes > 0, let free, free < options.minFreeDiskBytes {
            do {
                db = try checked("cannot open RocksDB read-only at \(path)") { err in
                    rocksdb_open_for_read_only_column_families(dbOptions, path, Int32(names.count), &cNames, &optPtrs,
                                                               &outHandles, 0, err)
                }
            } catch {
                releaseOptions()
                throw error
            }
            readOnlyReason = "\(free >> 20) MiB free, below min-free-disk \(options.minFreeDiskBytes >> 20) MiB"
            for (i, name) in names.enumerated() {
                if let h = outHandles[i] { handles[name] = h }
            }
            return
        }
        do {
            db = try checked("cannot open RocksDB at \(path)") { err in
                rocksdb_open_column_families(dbOptions, path, Int32(names.count), &cNames, &optPtrs,
                                             &outHandles, err)
            }
        } catch let e as StorageError where options.readOnlyWhenFull && e.message.contains("No space left on device") {
            // Opening writes a new MANIFEST and WAL; on a full disk only a read-only open can serve.
            do {
                db = try checked("cannot open RocksDB read-only at \(path)") { err in
                    rocksdb_open_for_read_only_column_families(dbOptions, path, Int32(names.count), &cNames, &optPtrs,
                                                               &outHandles, 0, err)
                }
                readOnlyReason = e.message
            } catch {
                releaseOptions()
                throw e
            }
        } catch {
            releaseOptions()
            throw error
        }
        for (i, name) in names.enumerated() {
            if let h = outHandles[i] { handles[name] = h }
        }
    }

    deinit { close() }

    /// The column families of an existing database, or nil when `path` holds none.
    public static func listColumnFamilies(path: String) -> [String]? {
        try? listColumnFamiliesReportingErrors(path: path)
    }

    /// The column families of an existing database; throws what RocksDB reported when it cannot read
    /// them (a missing, garbled or truncated CURRENT or MANIFEST).
    public static func listColumnFamiliesReportingErrors(path: String) throws -> [String] {
        let opts = rocksdb_options_create()
        defer { rocksdb_options_destroy(opts) }
        var count = 0
        var err: UnsafeMutablePointer<CChar>? = nil
        let list = rocksdb_list_column_families(opts, path, &count, &err)
        if let err {
            let message = String(cString: err)
            rocksdb_free(err)
            if let list { rocksdb_list_column_families_destroy(list, count) }
            throw StorageError(.rocksdb, message)
        }
        guard let list else { throw StorageError(.rocksdb, "no column families listed") }
        defer { rocksdb_list_column_families_destroy(list, count) }
        return (0..<count).compactMap { i in list[i].map { String(cString: $0) } }
    }

    private func releaseOptions() {
        for o in cfOptions { rocksdb_options_destroy(o) }
        cfOptions = []
        rocksdb_options_destroy(dbOptions)
        rocksdb_block_based_options_destroy(tableOptions)
        rocksdb_cache_destroy(blockCache)
        rocksdb_readoptions_destroy(readOptions)
        rocksdb_writeoptions_destroy(writeOptions)
        rocksdb_writeoptions_destroy(syncWriteOptions)
    }

    /// Flushes nothing by itself (the WAL already holds every write); releases handles and the LOCK file.
    public func close() {
        guard let db else { return }
        for (_, h) in handles { rocksdb_column_family_handle_destroy(h) }
        handles = [:]
        rocksdb_close(db)
        self.db = nil
        releaseOptions()
    }

    public var columnFamilyNames: [String] { Array(handles.keys).sorted() }

    func handle(_ cf: String) throws -> OpaquePointer {
        guard let h = handles[cf] else { throw StorageError(.rocksdb, "unknown column family '\(cf)'") }
        return h
    }

    private func open() throws -> OpaquePointer {
        guard let db else { throw StorageError(.rocksdb, "database is closed") }
        return db
    }

    /// Reads one value; nil when the key is absent.
    public func get(_ cf: String, _ key: [UInt8]) throws -> [UInt8]? {
        if let t = StoreTransaction.current(for: self), let written = t.lookup(cf, key) { return written }
        let db = try open()
        let h = try handle(cf)
        var len = 0
        let value: UnsafeMutablePointer<CChar>? = try key.withUnsafeBufferPointer { k in
            try checked("get from \(cf)") { err in
                k.baseAddress!.withMemoryRebound(to: CChar.self, capacity: k.count) {
                    rocksdb_get_cf(db, readOptions, h, $0, k.count, &len, err)
                }
            }
        }
        guard let value else { return nil }
        defer { rocksdb_free(value) }
        return value.withMemoryRebound(to: UInt8.self, capacity: len) { Array(UnsafeBufferPointer(start: $0, count: len)) }
    }

    /// Applies a batch atomically. `sync` makes RocksDB fsync the WAL before returning. A write the
    /// database refuses because it stopped taking writes is reported as `.writesStopped`.
    public func write(_ batch: WriteBatch, sync: Bool = false) throws {
        // Inside a MULTI/EXEC the batch's operations were recorded by the transaction, which writes them at EXEC.
        if batch.transaction != nil { return }
        let db = try open()
        if let readOnlyReason {
            throw StorageError(.readOnly, "the store at \(path) was opened read-only because the disk was full at startup "
                + "(\(readOnlyReason)); free disk space and restart latentd to write again")
        }
        if let low = lowSpaceMessage(), !batch.isWALSyncMarker {
            throw StorageError(.writesStopped, low)
        }
        do {
            try checked("write") { err in
                rocksdb_write(db, sync ? syncWriteOptions : writeOptions, batch.raw, err)
            }
        } catch let e as StorageError {
            guard let stopped = try? backgroundError() else { throw e }
            throw StorageError(.writesStopped, "the store at \(path) stopped taking writes: \(stopped). Reads work; writes "
                + "resume by themselves once the cause is fixed (a full disk: free at least the 64 MiB write buffer)")
        }
    }

    /// Forces the write-ahead log to disk: every write made so far survives a power loss.
    ///
    /// Done as a synced write of one small marker record in the default column family, not with
    /// RocksDB's FlushWAL/SyncWAL: after a failed WAL append (a full disk) SyncWAL goes to the broken
    /// log writer and Debian's build, which keeps assertions, aborts the process there. A write first
    /// checks the database's background error and returns it, so a stopped database answers with the
    /// error (and a resumed one syncs its new log).
    public func syncWAL() throws {
        _ = try open()
        if readOnlyReason != nil { return } // nothing can have been written
        let batch = WriteBatch(for: self)
        batch.isWALSyncMarker = true
        try batch.put("default", Array("latentdb/wal-sync".utf8), [1])
        try write(batch, sync: true)
    }

    /// The background error that stops writes (a full disk, a failed WAL append), nil when writes work.
    public func backgroundError() throws -> String? {
        _ = try open()
        if readOnlyReason != nil { return nil }
        if let low = lowSpaceMessage(maxAgeNanos: 0) { return low }
        return try engineError()
    }

    /// RocksDB's own background error (what `resume` clears), nil when it has none.
    public func engineError() throws -> String? {
        let db = try open()
        if readOnlyReason != nil { return nil }
        guard let err = latent_rocksdb_background_error(db) else { return nil }
        defer { rocksdb_free(err) }
        return String(cString: err)
    }

    /// Where RocksDB's memory goes now (INFO memory): memtables and table readers summed over the column
    /// families, and the shared block cache's usage (capacity is the `--block-cache-mb` budget).
    public var memoryUsage: StorageMemory {
        guard let db else { return StorageMemory() }
        var m = StorageMemory()
        for (_, cf) in handles {
            var v: UInt64 = 0
            if rocksdb_property_int_cf(db, cf, "rocksdb.cur-size-all-mem-tables", &v) == 0 { m.memtableBytes += v }
            if rocksdb_property_int_cf(db, cf, "rocksdb.estimate-table-readers-mem", &v) == 0 { m.tableReaderBytes += v }
        }
        m.blockCacheBytes = UInt64(rocksdb_cache_get_usage(blockCache))
        m.blockCachePinnedBytes = UInt64(rocksdb_cache_get_pinned_usage(blockCache))
        return m
    }

    /// The sequence number of the last write applied (recovered at open, advanced by writes).
    public var latestSequenceNumber: UInt64 {
        guard let db else { return 0 }
        return rocksdb_get_latest_sequence_number(db)
    }

    /// Free bytes for unprivileged writers on the file system holding `path` (nil when unknown).
    public static func freeBytes(_ path: String) -> UInt64? {
        var st = statvfs()
        var probe = path
        // A store not created yet: ask about the nearest existing parent.
        while statvfs(probe, &st) != 0 {
            let parent = (probe as NSString).deletingLastPathComponent
            if parent == probe || parent.isEmpty { return nil }
            probe = parent
        }
        return UInt64(st.f_bavail) * UInt64(st.f_frsize)
    }

    /// Why writes are refused for lack of space, nil when there is enough. statvfs is asked at most
    /// every `maxAgeNanos` (a syscall per write would cost pipelined loads).
    func lowSpaceMessage(maxAgeNanos: UInt64 = 20_000_000) -> String? {
        guard minFreeDiskBytes > 0 else { return nil }
        let now = DispatchTime.now().uptimeNanoseconds
        let free: UInt64 = spaceLock.withLock {
            if now &- spaceCheckedAt >= maxAgeNanos || spaceCheckedAt == 0 {
                spaceFree = RocksDB.freeBytes(path) ?? .max
                spaceCheckedAt = now
            }
            return spaceFree
        }
        guard free < minFreeDiskBytes else { return nil }
        return "the disk holding \(path) has \(free >> 20) MiB free, below min-free-disk (\(minFreeDiskBytes >> 20) MiB): writes "
            + "are refused until space is freed (they resume by themselves); reads work"
    }

    /// Clears a background error once its cause is gone (RocksDB's DB::Resume): writes work again
    /// without a restart. Throws RocksDB's error while the cause persists.
    public func resume() throws {
        let db = try open()
        if let err = latent_rocksdb_resume(db) {
            let message = String(cString: err)
            rocksdb_free(err)
            throw StorageError(.rocksdb, "resume: \(message)")
        }
    }

    /// Flushes memtables of the given column families to SST files.
    public func flush(_ cfs: [String]) throws {
        let db = try open()
        if readOnlyReason != nil { return } // nothing was written
        let opts = rocksdb_flushoptions_create()
        defer { rocksdb_flushoptions_destroy(opts) }
        rocksdb_flushoptions_set_wait(opts, 1)
        for cf in cfs {
            let h = try handle(cf)
            try checked("flush \(cf)") { err in rocksdb_flush_cf(db, opts, h, err) }
        }
    }

    /// Compacts the keys of `cf` in [start, limit) (nil: unbounded) down through the bottom level and waits
    /// for it, so records deleted or overwritten in that range leave the files. RocksDB's C API returns no
    /// error from a manual compaction; a failure shows as the background error, checked after.
    public func compact(_ cf: String, from start: [UInt8]?, to limit: [UInt8]?) throws {
        let db = try open()
        if let readOnlyReason { throw StorageError(.readOnly, "compact \(cf): the store is open read-only (\(readOnlyReason))") }
        let h = try handle(cf)
        let opts = rocksdb_compactoptions_create()
        defer { rocksdb_compactoptions_destroy(opts) }
        rocksdb_compactoptions_set_bottommost_level_compaction(opts, 2) // kForce: rewrite the bottom level too
        rocksdb_compactoptions_set_exclusive_manual_compaction(opts, 0)  // automatic compactions go on meanwhile
        func withKey(_ key: [UInt8]?, _ body: (UnsafePointer<CChar>?, Int) -> Void) {
            guard let key else { return body(nil, 0) }
            key.withUnsafeBufferPointer { body(UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), key.count) }
        }
        withKey(start) { s, sLen in
            withKey(limit) { l, lLen in rocksdb_compact_range_cf_opt(db, h, opts, s, sLen, l, lLen) }
        }
        if let e = try engineError() { throw StorageError(.rocksdb, "compact \(cf): \(e)") }
    }

    /// A consistent point-in-time copy of the whole store in `path` (which must not exist, on the same
    /// file system: SST files are hard-linked, memtables flushed first), openable as a store of its own.
    public func checkpoint(to path: String) throws {
        let db = try open()
        let cp = try checked("checkpoint") { err in rocksdb_checkpoint_object_create(db, err) }
        guard let cp else { throw StorageError(.rocksdb, "checkpoint: RocksDB returned no checkpoint object") }
        defer { rocksdb_checkpoint_object_destroy(cp) }
        try checked("checkpoint to \(path)") { err in rocksdb_checkpoint_create(cp, path, 0, err) }
    }

    /// RocksDB's estimate of the bytes compaction must still rewrite in `cf`, 0 when unknown.
    public func pendingCompactionBytes(_ cf: String) -> UInt64 {
        guard let db, let h = handles[cf] else { return 0 }
        var v: UInt64 = 0
        return rocksdb_property_int_cf(db, h, "rocksdb.estimate-pending-compaction-bytes", &v) == 0 ? v : 0
    }

    /// Bytes of `cf`'s SST files (RocksDB's rocksdb.total-sst-files-size), 0 when unknown.
    public func sstBytes(_ cf: String) -> UInt64 {
        guard let db, let h = handles[cf] else { return 0 }
        var v: UInt64 = 0
        return rocksdb_property_int_cf(db, h, "rocksdb.total-sst-files-size", &v) == 0 ? v : 0
    }

    /// Visits every key starting with `prefix`, in key order. Return false from `body` to stop.
    /// Iterates the keys of `cf` that start with `prefix`, in order, from `from` (a key with that prefix)
    /// or from the first; `body` returns false to stop.
    public func scan(_ cf: String, prefix: [UInt8], from: [UInt8]? = nil,
                     _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Bool) throws {
        let db = try open()
        let h = try handle(cf)
        let opts = rocksdb_readoptions_create()
        defer { rocksdb_readoptions_destroy(opts) }
        let upper = prefixUpperBound(prefix)
        // The bound must outlive the iterator, so it lives in memory we own for the whole scan.
        let upperPtr = UnsafeMutablePointer<CChar>.allocate(capacity: max(upper?.count ?? 0, 1))
        defer { upperPtr.deallocate() }
        if let upper {
            for (i, b) in upper.enumerated() { upperPtr[i] = CChar(bitPattern: b) }
            rocksdb_readoptions_set_iterate_upper_bound(opts, upperPtr, upper.count)
        }
        guard let it = rocksdb_create_iterator_cf(db, opts, h) else {
            throw StorageError(.rocksdb, "cannot create iterator on \(cf)")
        }
        defer { rocksdb_iter_destroy(it) }
        let seekKey = from.flatMap { $0.starts(with: prefix) && $0.count > prefix.count ? $0 : nil } ?? prefix
        seekKey.withUnsafeBufferPointer { p in
            p.baseAddress.map { base in
                base.withMemoryRebound(to: CChar.self, capacity: p.count) { rocksdb_iter_seek(it, $0, p.count) }
            } ?? rocksdb_iter_seek_to_first(it)
        }
        while rocksdb_iter_valid(it) != 0 {
            var klen = 0, vlen = 0
            let k = rocksdb_iter_key(it, &klen)!
            let v = rocksdb_iter_value(it, &vlen)
            let keep = try body(UnsafeRawBufferPointer(start: k, count: klen),
                                UnsafeRawBufferPointer(start: v, count: vlen))
            if !keep { break }
            rocksdb_iter_next(it)
        }
        try checked("iterate \(cf)") { err in rocksdb_iter_get_error(it, err) }
    }
}

/// The smallest key greater than every key with this prefix; nil when there is none (all 0xFF).
func prefixUpperBound(_ prefix: [UInt8]) -> [UInt8]? {
    var upper = prefix
    while let last = upper.last {
        if last < 0xFF {
            upper[upper.count - 1] = last + 1
            return upper
        }
        upper.removeLast()
    }
    return nil
}

/// A set of puts and deletes applied atomically by `RocksDB.write`.
public final class WriteBatch {
    let raw: OpaquePointer
    private let db: RocksDB
    /// The one-record batch `syncWAL` writes: exempt from the free-space guard (it adds no data).
    var isWALSyncMarker = false

    /// The transaction open on the creating thread: operations are recorded there too.
    let transaction: StoreTransaction?

    public init(for db: RocksDB) {
        raw = rocksdb_writebatch_create()
        self.db = db
        transaction = StoreTransaction.current(for: db)
    }

    deinit { rocksdb_writebatch_destroy(raw) }

    public var count: Int { Int(rocksdb_writebatch_count(raw)) }

    public func put(_ cf: String, _ key: [UInt8], _ value: UnsafeRawBufferPointer) throws {
        transaction?.record(.put(cf: cf, key: key, value: Array(value)))
        try rawPut(cf, key, value)
    }

    func rawPut(_ cf: String, _ key: [UInt8], _ value: [UInt8]) throws {
        try value.withUnsafeBytes { try rawPut(cf, key, $0) }
    }

    private func rawPut(_ cf: String, _ key: [UInt8], _ value: UnsafeRawBufferPointer) throws {
        let h = try db.handle(cf)
        // RocksDB copies the bytes; an empty value still needs a valid pointer.
        let placeholder: [CChar] = [0]
        key.withUnsafeBytes { k in
            placeholder.withUnsafeBufferPointer { z in
                rocksdb_writebatch_put_cf(raw, h, k.baseAddress!.assumingMemoryBound(to: CChar.self), k.count,
                                          value.baseAddress?.assumingMemoryBound(to: CChar.self) ?? z.baseAddress!,
                                          value.count)
            }
        }
    }

    public func put(_ cf: String, _ key: [UInt8], _ value: [UInt8]) throws {
        try value.withUnsafeBytes { try put(cf, key, $0) }
    }

    public func delete(_ cf: String, _ key: [UInt8]) throws {
        transaction?.record(.delete(cf: cf, key: key))
        try rawDelete(cf, key)
    }

    func rawDelete(_ cf: String, _ key: [UInt8]) throws {
        let h = try db.handle(cf)
        key.withUnsafeBytes { k in
            rocksdb_writebatch_delete_cf(raw, h, k.baseAddress!.assumingMemoryBound(to: CChar.self), k.count)
        }
    }

    /// Deletes every key that starts with `prefix` (one range tombstone, cheap however many keys).
    public func deletePrefix(_ cf: String, _ prefix: [UInt8]) throws {
        let h = try db.handle(cf)
        guard let upper = prefixUpperBound(prefix) else {
            throw StorageError(.rocksdb, "cannot delete an unbounded prefix")
        }
        transaction?.record(.deleteRange(cf: cf, start: prefix, end: upper))
        try rawDeleteRange(cf, prefix, upper)
    }

    func rawDeleteRange(_ cf: String, _ prefix: [UInt8], _ upper: [UInt8]) throws {
        let h = try db.handle(cf)
        prefix.withUnsafeBytes { s in
            upper.withUnsafeBytes { e in
                rocksdb_writebatch_delete_range_cf(raw, h, s.baseAddress!.assumingMemoryBound(to: CChar.self), s.count,
                                                   e.baseAddress!.assumingMemoryBound(to: CChar.self), e.count)
            }
        }
    }
}
