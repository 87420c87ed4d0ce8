import Dispatch
import LatentVectors

/// Real deletes for HNSW: tombstones are unlinked by repair passes and their nodes reused.
///
/// A removed node becomes a tombstone (`deleted`): searches still walk through it, so the graph stays
/// connected, but nothing returns it and no insert or repair links to it from then on. A repair pass
/// takes the tombstones at hand as its batch and visits every live node once; each link list that names
/// a batch node is rebuilt from its remaining neighbours plus the batch node's own neighbours (two hops
/// through chains of deleted nodes), pruned with the insert heuristic. Since no new link can reach a
/// batch node after it was deleted, at the end of the pass no live node names one: the batch nodes are
/// freed and the next inserts reuse them (and their memory) with a new vector, level and links.
/// Tombstones' own lists are never repaired; they may keep naming freed-and-reused nodes, which is
/// harmless (a search reaching one treats it as the live node it now is; `withLinks` gives no links at
/// a level a reused node no longer has).
///
/// How this compares with the alternatives: Redis' hnsw.c keeps links bidirectional so a delete can
/// relink the node's neighbours at once, at the cost of stricter insert bookkeeping; hnswlib repairs
/// only the neighbours of a slot it reuses and otherwise keeps deleted nodes forever; mark-and-rebuild
/// (what LatentDB did before) never keeps up with a steady update load. Passes batch the work so one
/// scan of the link lists serves many deletes: a pass starts when tombstones reach 1/200 of the live
/// nodes (at least 32), or at once when the collection has nothing else to add (`idle`). The collection
/// runs passes in time slices under its write lock, between inserts of its pending tail.
extension HNSWIndex {
    /// Whether a repair pass is running or tombstones wait for one.
    public var hasRepairWork: Bool { !repairBatch.isEmpty || !tombstones.isEmpty }

    /// Nodes no live node links to, waiting to be reused.
    public var freeNodeCount: Int { freeNodes.count }

    /// Tombstones that start a pass while inserts are still waiting.
    var repairThreshold: Int { max(32, liveCount / 200) }

    /// Runs repair work until `deadline` (DispatchTime uptime nanoseconds). With `idle` false a new
    /// pass starts only once enough tombstones gathered. Returns whether work remains.
    @discardableResult
    public func repair(until deadline: UInt64, idle: Bool) -> Bool {
        if repairBatch.isEmpty {
            guard !tombstones.isEmpty, idle || tombstones.count >= repairThreshold else { return hasRepairWork }
            repairBatch = tombstones
            tombstones = []
            for node in repairBatch { inRepairBatch[Int(node)] = true }
            repairCursor = 0
        }
        var visited = 0
        while repairCursor < count {
            visited += 1
            if visited % 64 == 0, DispatchTime.now().uptimeNanoseconds >= deadline { return true }
            let node = UInt32(repairCursor)
            repairCursor += 1
            guard !deleted[Int(node)] else { continue }
            for level in 0...Int(levels[Int(node)]) { relinkIfNeeded(node, level: level) }
        }
        finishRepairPass()
        return hasRepairWork
    }

    /// Runs repair passes until no tombstone is left (tests; a snapshot writer that wants a clean graph).
    public func repairAll() {
        while repair(until: UInt64.max, idle: true) {}
    }

    /// Rebuilds `node`'s list at `level` when it names a node of the running pass.
    private func relinkIfNeeded(_ node: UInt32, level: Int) {
        let current: [UInt32] = withLinks(node, level, locked: false) { Array($0) }
        guard current.contains(where: { inRepairBatch[Int($0)] }) else { return }
        var seen = Set<UInt32>([node])
        var candidates: [UInt32] = []
        var frontier: [UInt32] = []
        for n in current where seen.insert(n).inserted {
            if inRepairBatch[Int(n)] { frontier.append(n) } else { candidates.append(n) }
        }
        // Two hops through batch nodes: a run of deleted neighbours still yields live replacements.
        for _ in 0..<2 where !frontier.isEmpty {
            var next: [UInt32] = []
            for d in frontier {
                withLinks(d, level, locked: false) { links in
                    for n in links where seen.insert(n).inserted {
                        if inRepairBatch[Int(n)] { next.append(n) } else if !deleted[Int(n)] { candidates.append(n) }
                    }
                }
            }
            frontier = next
        }
        // A tombstone of a later batch may stay in the list (its own pass replaces it); a candidate must
        // have the level it is linked at.
        let base = vector(node)
        let sorted = candidates.filter { level == 0 || Int(levels[Int($0)]) >= level }
            .map { Neighbor(slot: $0, distance: distance(base, $0)) }
            .sorted { $0.distance < $1.distance }
        setLinks(node, level, selectNeighbors(sorted, limit: level == 0 ? m0 : m).map(\.slot))
        relinkedLists += 1
    }

    /// Frees the batch and, when the entry point was in it, moves the entry to a live node of the
    /// highest level (the graph is empty again when none is left).
    private func finishRepairPass() {
        for node in repairBatch {
            inRepairBatch[Int(node)] = false
            freeNodes.append(node)
        }
        let freedEntry = repairBatch.contains(entryPoint)
        deletedCount -= repairBatch.count
        repairBatch = []
        repairCursor = 0
        repairPasses += 1
        guard freedEntry else { return }
        var best: Int?
        for node in 0..<count where !deleted[node] {
            if best == nil || levels[node] > levels[best!] { best = node }
        }
        if let best {
            entryPoint = UInt32(best)
            maxLevel = Int(levels[best])
        } else if tombstones.isEmpty {
            entryPoint = 0
            maxLevel = -1
        } else {
            // Only tombstones of a later batch remain: one of them stays the (traversed, never
            // returned) entry until its own pass empties the graph.
            entryPoint = tombstones[0]
            maxLevel = Int(levels[Int(entryPoint)])
        }
    }
}

extension HNSWIndex {
    /// Broken structural rules, described (empty when the graph is sound): no live node links to a
    /// free node or, above layer 0, to a node without that level; the entry point is on the top level;
    /// live nodes and the slot map agree. Tests and the structure fuzzer check it after every change.
    public func structuralProblems() -> [String] {
        var problems: [String] = []
        let free = Set(freeNodes)
        if count > 0, maxLevel >= 0, Int(levels[Int(entryPoint)]) != maxLevel {
            problems.append("entry point \(entryPoint) has level \(levels[Int(entryPoint)]), top is \(maxLevel)")
        }
        for node in 0..<count where !deleted[node] {
            if nodeOfSlot[slots[node]] != UInt32(node) { problems.append("node \(node) is not its slot's node") }
            if Int(levels[node]) > maxLevel { problems.append("live node \(node) above the top level") }
            for level in 0...Int(levels[node]) {
                withLinks(UInt32(node), level, locked: false) { links in
                    for n in links {
                        if free.contains(n) { problems.append("node \(node) links to free node \(n) at level \(level)") }
                        if Int(levels[Int(n)]) < level { problems.append("node \(node) links to \(n) above its level") }
                    }
                }
            }
        }
        if nodeOfSlot.count != liveCount { problems.append("slot map has \(nodeOfSlot.count) entries, \(liveCount) live nodes") }
        return problems
    }
}
