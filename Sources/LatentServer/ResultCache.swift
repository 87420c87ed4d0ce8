import NIOConcurrencyHelpers
import LatentProtocol

/// An LRU cache of VSIM replies, bounded in bytes.
///
/// Entries remember the never-reused id and write version of every collection the answer depends on (the
/// searched one and a FROM one). A lookup compares them with the current ones, so an answer is never
/// served after a write, a drop or a rename touched those collections: stale entries are simply missed
/// and replaced. Collections bump their version after a write is visible, and the executor reads the
/// versions before searching, so a reply computed across a write is stored under the older version.
/// Guarding: every stored field (`capacity`, the index, entries, free list, LRU ends, stats) is guarded
/// by `lock`; nothing is read outside it.
public final class ResultCache: @unchecked Sendable {
    public struct Dependency: Equatable, Sendable {
        /// The collection's id: never reused, unlike a name (VDROP then VCREATE) or an object address.
        var collection: UInt32
        var version: UInt64

        public init(collection: UInt32, version: UInt64) {
            self.collection = collection
            self.version = version
        }
    }

    private struct Entry {
        var key: [UInt8]
        var reply: RESPValue
        var dependencies: [Dependency]
        var bytes: Int
        var previous: Int
        var next: Int
    }

    public struct Stats: Sendable {
        public var hits = 0, misses = 0, evictions = 0, bytes = 0, entries = 0
    }

    /// Guarded by `lock` (CONFIG SET query-cache-mb changes it while requests run).
    private var capacity: Int
    private let lock = NIOLock()
    private var index: [[UInt8]: Int] = [:]
    private var entries: [Entry] = []
    private var free: [Int] = []
    /// Most recently used at `head`; -1 marks the ends.
    private var head = -1, tail = -1
    private var stats = Stats()

    public init(capacityBytes: Int) {
        capacity = capacityBytes
    }

    public var capacityBytes: Int { lock.withLock { capacity } }

    public var isEnabled: Bool { capacityBytes > 0 }

    /// Changes the bound, evicting least recently used entries until the cache fits (0 empties it).
    public func resize(capacityBytes: Int) {
        lock.withLock {
            capacity = capacityBytes
            while stats.bytes > capacity, tail >= 0 {
                remove(tail)
                stats.evictions += 1
            }
        }
    }

    /// Drops every entry (a replica installed a new copy: collection ids and versions start over).
    public func clear() {
        lock.withLock {
            while tail >= 0 { remove(tail) }
        }
    }

    public func snapshot() -> Stats { lock.withLock { stats } }

    /// The cached reply for `key` if every dependency still has the given identity and version.
    public func lookup(_ key: [UInt8], current: [Dependency]) -> RESPValue? {
        lock.withLock {
            guard let i = index[key] else {
                stats.misses += 1
                return nil
            }
            guard entries[i].dependencies == current else {
                remove(i)
                stats.misses += 1
                return nil
            }
            moveToFront(i)
            stats.hits += 1
            return entries[i].reply
        }
    }

    public func store(_ key: [UInt8], reply: RESPValue, dependencies: [Dependency]) {
        let bytes = key.count + ResultCache.size(of: reply) + 96
        lock.withLock {
            guard bytes <= capacity else { return }
            if let old = index[key] { remove(old) }
            while stats.bytes + bytes > capacity, tail >= 0 {
                remove(tail)
                stats.evictions += 1
            }
            let entry = Entry(key: key, reply: reply, dependencies: dependencies, bytes: bytes, previous: -1, next: head)
            let i: Int
            if let slot = free.popLast() { entries[slot] = entry; i = slot } else { entries.append(entry); i = entries.count - 1 }
            if head >= 0 { entries[head].previous = i }
            head = i
            if tail < 0 { tail = i }
            index[key] = i
            stats.bytes += bytes
            stats.entries += 1
        }
    }

    private func unlink(_ i: Int) {
        let (p, n) = (entries[i].previous, entries[i].next)
        if p >= 0 { entries[p].next = n } else { head = n }
        if n >= 0 { entries[n].previous = p } else { tail = p }
    }

    private func moveToFront(_ i: Int) {
        guard head != i else { return }
        unlink(i)
        entries[i].previous = -1
        entries[i].next = head
        if head >= 0 { entries[head].previous = i }
        head = i
        if tail < 0 { tail = i }
    }

    private func remove(_ i: Int) {
        unlink(i)
        index[entries[i].key] = nil
        stats.bytes -= entries[i].bytes
        stats.entries -= 1
        entries[i].key = []
        entries[i].reply = .null
        entries[i].dependencies = []
        free.append(i)
    }

    /// Bytes a cached reply costs the process, as the allocator hands them out: each bulk string is a
    /// heap ByteBuffer (a storage object of ~64 bytes plus capacity rounded up to a power of two, the way
    /// NIO's allocator sizes it), each aggregate an array of 32-byte slots. Counting only the payload (as
    /// before) let a 64 MiB cache hold ~290 MiB of RSS (docs/benchmarks.md, stress with and without cache).
    static func size(of value: RESPValue) -> Int {
        switch value {
        case .bulkString(let b): return 80 + max(b.readableBytes, 1).nextPowerOfTwo
        case .simpleString(let s), .error(let s), .verbatim(let s): return 48 + s.utf8.count
        case .array(let items), .map(let items), .set(let items), .group(let items):
            return items.reduce(48 + 32 * items.count) { $0 + size(of: $1) }
        default: return 0 // inline in its slot
        }
    }

    /// A cache key from a request's arguments (length-prefixed, so no two requests share one).
    public static func key(_ args: [[UInt8]]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(args.reduce(0) { $0 + $1.count + 4 })
        for a in args {
            withUnsafeBytes(of: UInt32(a.count).littleEndian) { out.append(contentsOf: $0) }
            out.append(contentsOf: a)
        }
        return out
    }
}

private extension Int {
    /// The smallest power of two >= self (self >= 1; reply sizes are far below 2^62).
    var nextPowerOfTwo: Int { self <= 1 ? 1 : 1 << (Int.bitWidth - (self - 1).leadingZeroBitCount) }
}
