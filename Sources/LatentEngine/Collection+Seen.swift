import LatentIndex
import LatentStorage
import LatentVectors

/// Seen lists: what a user element of this collection has seen (rated, bought), for EXCLUDE-SEEN.
///
/// The lists are stored in the `seen` column family and held in memory (`seenSets`). A query against an
/// item collection turns the list into a `SlotSet` over the item collection's slots, cached per user
/// (`seenSlotCache`) and brought up to date by re-testing only the slots written since (`slotChanges`),
/// so the per-query cost does not grow with the list: the walk tests one set membership per candidate.
extension Collection {
    /// Replaces the items a user element has seen. False when the element does not exist.
    @discardableResult
    public func setSeen(id: ElementID, items: [ElementID]) throws -> Bool {
        try changeSeen(id: id) { _ in Set(items) } != nil
    }

    /// Adds items to a user's seen list; the number not already on it, or nil when the user does not exist.
    public func addSeen(id: ElementID, items: [ElementID]) throws -> Int? {
        var added = 0
        let done = try changeSeen(id: id) { current in
            var next = current
            for item in items where next.insert(item).inserted { added += 1 }
            return next
        }
        return done.map { _ in added }
    }

    /// Removes items from a user's seen list; the number that were on it, or nil when the user does not exist.
    public func removeSeen(id: ElementID, items: [ElementID]) throws -> Int? {
        var removed = 0
        let done = try changeSeen(id: id) { current in
            var next = current
            for item in items where next.remove(item) != nil { removed += 1 }
            return next
        }
        return done.map { _ in removed }
    }

    /// Writes the list `change` makes of the current one (an empty list deletes the record), then
    /// publishes it in memory. Nil when the user element does not exist.
    private func changeSeen(id: ElementID, _ change: (Set<ElementID>) -> Set<ElementID>) throws -> Set<ElementID>? {
        try withWriter {
            guard state.withReadLock({ slotOf[id] != nil }) else { return nil }
            let current = seenSets.items(of: id)
            let next = change(current)
            if next == current { return next }
            let batch = WriteBatch(for: store.db)
            try storageCall {
                if next.isEmpty {
                    try store.deleteSeen(collection: collectionId, id: id.bytes, in: batch)
                } else {
                    try store.putSeen(collection: collectionId, id: id.bytes, SeenList.encode(next.sorted()), in: batch)
                }
                try store.db.write(batch)
            }
            seenSets.replace(id, with: next)
            return next
        }
    }

    /// The items stored for a user element (empty when none), in id order.
    public func seen(of id: ElementID) -> [ElementID] { seenSets.items(of: id).sorted() }

    /// The user's list as a query uses it, or nil when the user has none.
    public func seenSnapshot(of id: ElementID) -> SeenSnapshot? { seenSets.snapshot(collection: collectionId, user: id) }

    /// Users with a stored list, and the bytes the lists take in memory.
    public var seenListUsers: Int { seenSets.userCount }
    public var seenListBytes: Int { seenSets.memoryBytes }
    /// Bytes of the seen-slot sets cached for queries against this collection.
    public var seenSlotCacheBytes: Int { seenSlotCache.memoryBytes }

    /// The slots of this collection holding items on `list`. Caller holds `state`'s read (or write) lock,
    /// so `slotChanges`, `idOf` and `slotOf` are stable while this runs.
    func seenSlotsLocked(_ list: SeenSnapshot) -> SlotSet {
        let key = SeenSlotCache.Key(collection: list.collection, user: list.user)
        let epoch = slotChanges.epoch
        if var entry = seenSlotCache.lookup(key), entry.listVersion == list.version {
            if entry.epoch == epoch { return entry.slots }
            if let changed = slotChanges.changes(since: entry.epoch) {
                for slot in changed {
                    if Int(slot) < idOf.count, let id = idOf[Int(slot)], list.items.contains(id) {
                        entry.slots.insert(slot)
                    } else {
                        entry.slots.remove(slot)
                    }
                }
                entry.epoch = epoch
                seenSlotCache.store(key, entry)
                return entry.slots
            }
        }
        let slots = SlotSet(list.items.compactMap { slotOf[$0] })
        seenSlotCache.store(key, SeenSlotCache.Entry(listVersion: list.version, epoch: epoch, slots: slots))
        return slots
    }
}
