import CRocksDB
import Foundation

/// The writes of one MULTI/EXEC, gathered and applied as one WriteBatch, so a crash leaves all of them
/// or none.
///
/// While a transaction is open on a thread, every `WriteBatch` that thread fills also records its
/// operations here, and `RocksDB.write` of such a batch writes nothing: `commit` writes them all at
/// once. Reads on that thread (`RocksDB.get`) see the transaction's own writes first, so a command
/// later in the same EXEC reads what an earlier one wrote (VSETATTR then VGETATTR). Iterators do not
/// (no command of a transaction iterates what it wrote; documented in docs/protocol.md). Other threads
/// (index snapshots, other connections' commands, which the server holds back during an EXEC) write
/// as usual.
///
/// Guarding: a transaction belongs to the thread that began it (found through a thread-specific key);
/// its fields are only touched by that thread.
public final class StoreTransaction {
    enum Operation {
        case put(cf: String, key: [UInt8], value: [UInt8])
        case delete(cf: String, key: [UInt8])
        case deleteRange(cf: String, start: [UInt8], end: [UInt8])
    }

    let db: RocksDB
    private(set) var operations: [Operation] = []

    init(db: RocksDB) { self.db = db }

    func record(_ op: Operation) { operations.append(op) }

    /// What the transaction wrote for `key` so far: `.some(value)`, `.some(nil)` when it deleted it, nil
    /// when it did not touch it.
    func lookup(_ cf: String, _ key: [UInt8]) -> [UInt8]?? {
        for op in operations.reversed() {
            switch op {
            case .put(let c, let k, let v) where c == cf && k == key: return .some(v)
            case .delete(let c, let k) where c == cf && k == key: return .some(nil)
            case .deleteRange(let c, let s, let e) where c == cf && !key.lexicographicallyPrecedes(s) && key.lexicographicallyPrecedes(e):
                return .some(nil)
            default: continue
            }
        }
        return nil
    }

    // MARK: The thread's open transaction

    private static let key: pthread_key_t = {
        var k = pthread_key_t()
        // The value is an unretained pointer owned by `run` for its whole duration: no destructor.
        pthread_key_create(&k, nil)
        return k
    }()

    /// The transaction open on the calling thread for `db`, if any.
    static func current(for db: RocksDB) -> StoreTransaction? {
        guard let p = pthread_getspecific(key) else { return nil }
        let t = Unmanaged<StoreTransaction>.fromOpaque(p).takeUnretainedValue()
        return t.db === db ? t : nil
    }

    /// Runs `body` with a transaction open on this thread, then writes what it gathered in one batch
    /// (`sync`: fsync the WAL first). If `body` throws, nothing is written. Transactions do not nest.
    /// `alsoPut` records are added to the same batch at commit (a replica's applied stream offset rides
    /// in the batch of the writes it covers, so a crash keeps both or neither).
    public static func run<T>(on db: RocksDB, sync: Bool, alsoPut: [(cf: String, key: [UInt8], value: [UInt8])] = [],
                              _ body: () throws -> T) throws -> T {
        precondition(pthread_getspecific(key) == nil, "StoreTransaction.run does not nest") // internal misuse only
        let t = StoreTransaction(db: db)
        // Invariant: the pointer is cleared before `t` goes out of scope (the defer below).
        pthread_setspecific(key, Unmanaged.passUnretained(t).toOpaque())
        let result: T
        do {
            defer { pthread_setspecific(key, nil) }
            result = try withExtendedLifetime(t) { try body() }
        }
        for extra in alsoPut { t.record(.put(cf: extra.cf, key: extra.key, value: extra.value)) }
        try t.commit(sync: sync)
        return result
    }

    private func commit(sync: Bool) throws {
        guard !operations.isEmpty else { return }
        let batch = WriteBatch(for: db)
        for op in operations {
            switch op {
            case .put(let cf, let k, let v): try batch.rawPut(cf, k, v)
            case .delete(let cf, let k): try batch.rawDelete(cf, k)
            case .deleteRange(let cf, let s, let e): try batch.rawDeleteRange(cf, s, e)
            }
        }
        try db.write(batch, sync: sync)
    }
}
