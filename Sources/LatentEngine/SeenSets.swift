import Foundation
import LatentIndex
import LatentVectors

/// A user's seen items as a query uses them: which users collection and user they belong to, and the
/// version of the list, so an item collection can tell whether the slot set it cached is still current.
public struct SeenSnapshot: Sendable {
    public let collection: UInt32
    public let user: ElementID
    /// Never reused within a collection: a list changed, deleted or re-created gets a new one.
    public let version: UInt64
    public let items: Set<ElementID>
}

/// The seen lists (VSETSEEN, VADDSEEN, VREMSEEN) of a users collection's elements, held in memory: read
/// from the `seen` column family when the collection opens and replaced after each successful write, so
/// EXCLUDE-SEEN never reads RocksDB.
///
/// Guarding: `entries`, `nextVersion` and `itemCount` are guarded by `lock`. Writers also hold the
/// collection's writer mutex, so a list's store record and its memory copy change in the same order.
final class SeenSets: @unchecked Sendable {
    private struct Entry {
        var version: UInt64
        var items: Set<ElementID>
    }
    private var entries: [ElementID: Entry] = [:]
    private var nextVersion: UInt64 = 1
    private var itemCount = 0
    private var idBytes = 0
    private let lock = NSLock()

    /// The user's list, or nil when none is stored.
    func snapshot(collection: UInt32, user: ElementID) -> SeenSnapshot? {
        lock.withLock {
            entries[user].map { SeenSnapshot(collection: collection, user: user, version: $0.version, items: $0.items) }
        }
    }

    func items(of user: ElementID) -> Set<ElementID> { lock.withLock { entries[user]?.items ?? [] } }

    /// Replaces the user's list (an empty one removes it).
    func replace(_ user: ElementID, with items: Set<ElementID>) {
        lock.withLock {
            if let old = entries.removeValue(forKey: user) {
                itemCount -= old.items.count
                idBytes -= old.items.reduce(0) { $0 + $1.count }
            }
            guard !items.isEmpty else { return }
            entries[user] = Entry(version: nextVersion, items: items)
            nextVersion &+= 1
            itemCount += items.count
            idBytes += items.reduce(0) { $0 + $1.count }
        }
    }

    var userCount: Int { lock.withLock { entries.count } }

    /// Estimated bytes: per item a hash-set bucket (ElementID's array reference, ~16 bytes with load
    /// factor) and the id's heap storage (32-byte header + bytes); per user the dictionary entry.
    var memoryBytes: Int { lock.withLock { itemCount * 48 + idBytes + entries.count * 96 } }
}

/// Slots written since some point: every slot that got a new element or lost one, in order. An item
/// collection's cached seen-slot sets catch up by re-testing just these slots. Bounded: the oldest half is
/// dropped when it grows past `limit`, and a cache entry older than what is kept is rebuilt from its list.
/// Guarded by the collection's `state` lock (appended under its write lock, read under its read lock).
struct SlotChangeLog {
    static let limit = 65_536
    private(set) var base: UInt64 = 0
    private(set) var slots: [UInt32] = []

    var epoch: UInt64 { base + UInt64(slots.count) }

    mutating func record(_ slot: UInt32) {
        slots.append(slot)
        if slots.count > Self.limit {
            slots.removeFirst(Self.limit / 2)
            base += UInt64(Self.limit / 2)
        }
    }

    /// The slots changed since `epoch`, or nil when the log no longer reaches back that far.
    func changes(since epoch: UInt64) -> ArraySlice<UInt32>? {
        guard epoch >= base, epoch <= self.epoch else { return nil }
        return slots[Int(epoch - base)...]
    }
}

/// An item collection's seen-slot sets: for a (users collection, user) the slots of this collection
/// holding items on the user's list, with the list version and change-log epoch they were computed at.
/// Bounded in bytes; over the bound arbitrary entries are dropped (they are rebuilt on next use).
/// Guarding: `entries` and `bytes` are guarded by `lock`.
final class SeenSlotCache: @unchecked Sendable {
    struct Key: Hashable {
        var collection: UInt32
        var user: ElementID
    }
    struct Entry {
        var listVersion: UInt64
        var epoch: UInt64
        var slots: SlotSet
    }
    static let capacityBytes = 64 << 20
    private var entries: [Key: Entry] = [:]
    private var bytes = 0
    private let lock = NSLock()

    func lookup(_ key: Key) -> Entry? { lock.withLock { entries[key] } }

    func store(_ key: Key, _ entry: Entry) {
        lock.withLock {
            if let old = entries.updateValue(entry, forKey: key) { bytes -= old.slots.memoryBytes + 64 }
            bytes += entry.slots.memoryBytes + 64
            while bytes > Self.capacityBytes, let victim = entries.first(where: { $0.key != key }) {
                bytes -= victim.value.slots.memoryBytes + 64
                entries.removeValue(forKey: victim.key)
            }
        }
    }

    var memoryBytes: Int { lock.withLock { bytes } }
    var count: Int { lock.withLock { entries.count } }
}
