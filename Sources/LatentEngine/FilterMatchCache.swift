import Foundation
import LatentFilter

/// Per collection: what recent filter expressions matched, by expression text and attribute-table
/// version. A query whose filter was seen at the current version skips the column passes over every
/// slot (most of a selective filtered query's time) and gets the exact match count for planning.
/// Any attribute change moves the version, so an entry is never used after the attributes it was
/// computed from changed; stale entries are replaced on their next use or evicted.
///
/// Guarding: `entries`, `tick` and `bytes` are guarded by `lock`, a leaf lock taken under the
/// collection's read lock (searches run concurrently).
final class FilterMatchCache: @unchecked Sendable {
    private struct Entry {
        var version: UInt64
        var matches: FilterMatches
        var lastUse: UInt64
    }

    /// Most expressions kept, and most bytes of match lists and bitmaps.
    static let maxEntries = 32
    static let maxBytes = 64 << 20

    private let lock = NSLock()
    private var entries: [String: Entry] = [:]
    private var tick: UInt64 = 0
    private var bytes = 0

    /// The matches of `source` at `version`, computing them with `compute` on a miss (nil from `compute`:
    /// the expression has no column-at-a-time form; nothing is cached).
    func matches(_ source: String, version: UInt64, dimension: Int, compute: () -> [UInt32]?) -> FilterMatches? {
        let hit: FilterMatches? = lock.withLock {
            tick += 1
            guard var e = entries[source], e.version == version else { return nil }
            e.lastUse = tick
            entries[source] = e
            return e.matches
        }
        if let hit { return hit }
        guard let slots = compute() else { return nil }
        let matches = FilterMatches(slots: slots, dimension: dimension)
        lock.withLock {
            if let old = entries.removeValue(forKey: source) { bytes -= old.matches.memoryBytes }
            guard matches.memoryBytes <= Self.maxBytes else { return }
            while entries.count >= Self.maxEntries || bytes + matches.memoryBytes > Self.maxBytes,
                  let oldest = entries.min(by: { $0.value.lastUse < $1.value.lastUse })?.key,
                  let evicted = entries.removeValue(forKey: oldest) {
                bytes -= evicted.matches.memoryBytes
            }
            entries[source] = Entry(version: version, matches: matches, lastUse: tick)
            bytes += matches.memoryBytes
        }
        return matches
    }

    var memoryBytes: Int { lock.withLock { bytes } }
    var count: Int { lock.withLock { entries.count } }
    var matchIndexCount: Int { lock.withLock { entries.values.filter { $0.matches.hasMatchIndex }.count } }

    func removeAll() {
        lock.withLock {
            entries = [:]
            bytes = 0
        }
    }
}
