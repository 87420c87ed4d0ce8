import CLatentSupport
import Foundation
import LatentVectors

/// Hierarchical Navigable Small World graph (Malkov & Yashunin, 2016/2018).
///
/// Layout, chosen for the search loop (as hnswlib does): one 64-byte aligned block holds, per node, its
/// vector and then its layer-0 links (`m0 + 1` words: count, then ids), so expanding a node whose
/// distance was just computed finds its links in cache. The rarely visited upper layers live in small
/// per-node arrays. Nodes are the index's own ids; `slots` maps them to the collection's slots.
///
/// Deletes and replacements are repaired in place (HNSWIndex+Repair.swift): a removed node becomes a
/// tombstone, still traversed as a waypoint and never returned or linked to; a repair pass then
/// relinks every live node that pointed at it (to the tombstone's own neighbours, pruned with the
/// insert heuristic) and frees its node, which the next insert reuses. Under a steady update load the
/// graph therefore keeps its size and quality without a full rebuild.
///
/// Thread safety: `build` inserts from several threads at once, guarding each node's links with a
/// striped lock. Outside `build`, the owner serializes mutations against searches (the collection's
/// read-write lock); concurrent searches are safe with each other.
public final class HNSWIndex: VectorIndex {
    public let metric: Metric
    public let dimension: Int
    public let m: Int
    public let m0: Int
    public let efConstruction: Int
    public var spec: IndexSpec { IndexSpec(kind: .hnsw, m: m, efConstruction: efConstruction) }
    public var infoFields: [(String, String)] {
        [("m", String(m)), ("ef-construction", String(efConstruction)), ("free-nodes", String(freeNodes.count)),
         ("repair-passes", String(repairPasses))]
    }

    /// Inserts one by one are cheaper than a parallel build only for a long bulk tail (a load that
    /// outpaces the drain). Deletes never ask for a build: repair passes reclaim their nodes.
    public static let incrementalLimit = 5_000

    public func wantsRebuild(requested: IndexSpec, live: Int, pending: Int) -> Bool {
        !spec.satisfies(requested) || pending > max(HNSWIndex.incrementalLimit, liveCount / 5)
    }

    public func addBatch(slots: [UInt32], vectors: UnsafePointer<Float>, threads: Int,
                         shouldContinue: @escaping (Int) -> Bool) -> Bool {
        build(slots: slots, vectors: vectors, threads: threads, progress: shouldContinue)
    }

    /// COSINE is served as inner product over normalised vectors: one dot product per comparison.
    private let kernelMetric: Metric
    /// The pair kernel for `kernelMetric` at the process's level, held here so the walk calls straight
    /// into the kernel module (no per-distance lookup of the active level).
    private let pairDistance: KernelTable.Pair
    private let levelMultiplier: Double
    var rng: SplitMix64

    private(set) var capacity: Int
    public internal(set) var count = 0
    /// Per node: `dimension` floats, then `m0 + 1` link words, padded to `stride` bytes.
    var level0: UnsafeMutableRawPointer
    let stride: Int
    /// Per node above layer 0: `level x (m + 1)` words in raw memory (nil at layer 0). Raw memory, not
    /// nested arrays: parallel builders rewrite different nodes' lists at once, and a Swift array of
    /// arrays would copy-on-write under them and lose updates.
    var upperLinks: [UnsafeMutablePointer<UInt32>?] = []
    var levels: [UInt8] = []
    internal(set) var slots: [UInt32] = []
    /// True for tombstones and free nodes: never returned by a search, never chosen as a neighbour.
    var deleted: [Bool] = []
    /// Tombstones (deleted, still linked to): `tombstones` plus the running pass's `repairBatch`.
    public internal(set) var deletedCount = 0
    /// Deleted since the last repair pass started, in deletion order.
    var tombstones: [UInt32] = []
    /// The tombstones the running repair pass unlinks (empty when no pass runs); `inRepairBatch` flags
    /// them per node and `repairCursor` is the next node whose links the pass checks.
    var repairBatch: [UInt32] = []
    var inRepairBatch: [Bool] = []
    var repairCursor = 0
    /// Nodes no live node links to any more, reused by the next inserts (hnswlib's replace_deleted).
    var freeNodes: [UInt32] = []
    /// Repair passes completed and links rewritten by them (VINFO, tests).
    public internal(set) var repairPasses = 0
    public internal(set) var relinkedLists = 0
    var nodeOfSlot: [UInt32: UInt32] = [:]
    var entryPoint: UInt32 = 0
    var maxLevel = -1

    private let scratchPool = ScratchPool()
    /// Lock stripes for parallel builds, sized by the capacity the index is created with (an empty
    /// collection's index takes 16, ~640 bytes; a build over n vectors up to 4,096). Fewer stripes than
    /// nodes only means more sharing; inserts into a small index run one at a time (the drain).
    private let stripes: StripedLocks
    private let entryLock = NSLock()

    public init(metric: Metric, dimension: Int, m: Int = 16, efConstruction: Int = 200, seed: UInt64 = 42,
                capacity: Int = 1024) {
        self.metric = metric
        self.dimension = dimension
        let parameters = IndexSpec.hnswParameters(m: m, efConstruction: efConstruction)
        self.m = parameters.m
        m0 = 2 * self.m
        self.efConstruction = parameters.efConstruction
        kernelMetric = metric == .cosine ? .ip : metric
        pairDistance = kernelMetric == .l2 ? DistanceKernels.active.l2Squared : DistanceKernels.active.dot
        levelMultiplier = 1 / log(Double(self.m))
        rng = SplitMix64(seed: seed)
        // Capacity 0 is allowed: an empty collection's graph allocates nothing until its first node.
        self.capacity = max(capacity, 0)
        stripes = StripedLocks(count: min(4096, max(16, self.capacity)))
        stride = HNSWIndex.levelZeroStride(dimension: dimension, m: self.m)
        level0 = .allocate(byteCount: max(64, self.capacity * stride), alignment: 64)
    }

    deinit {
        level0.deallocate()
        for p in upperLinks { p?.deallocate() }
    }

    public var liveCount: Int { count - deletedCount - freeNodes.count }
    public var cheapToAdd: Bool { false }

    public var memoryBytes: Int {
        capacity * (stride + 1 + 4 + 1)
            + zip(upperLinks, levels).reduce(0) { $0 + ($1.0 == nil ? 8 : 8 + Int($1.1) * (m + 1) * 4) } + nodeOfSlot.count * 24
    }

    public func contains(slot: UInt32) -> Bool { nodeOfSlot[slot] != nil }

    // MARK: Capacity and node data

    private func reserve(_ needed: Int) {
        guard needed > capacity else { return }
        var newCapacity = max(capacity, 16)
        while newCapacity < needed { newCapacity *= 2 }
        let block = UnsafeMutableRawPointer.allocate(byteCount: newCapacity * stride, alignment: 64)
        block.copyMemory(from: level0, byteCount: count * stride)
        level0.deallocate()
        level0 = block
        capacity = newCapacity
    }

    @inline(__always)
    func vector(_ node: UInt32) -> UnsafePointer<Float> {
        UnsafePointer((level0 + Int(node) * stride).assumingMemoryBound(to: Float.self))
    }

    /// Layer-0 links of `node`: `[count, id, id, ...]`.
    @inline(__always)
    func links0(_ node: UInt32) -> UnsafeMutablePointer<UInt32> {
        (level0 + Int(node) * stride + dimension * 4).assumingMemoryBound(to: UInt32.self)
    }

    @inline(__always)
    func distance(_ q: UnsafePointer<Float>, _ node: UInt32) -> Float {
        let d = pairDistance(q, vector(node), dimension)
        return kernelMetric == .l2 ? d : -d
    }

    /// The internal distance users of the protocol expect (COSINE: 1 - cos).
    @inline(__always)
    func external(_ d: Float) -> Float { metric == .cosine ? 1 + d : d }

    static func allocateUpper(level: Int, m: Int) -> UnsafeMutablePointer<UInt32>? {
        guard level > 0 else { return nil }
        let p = UnsafeMutablePointer<UInt32>.allocate(capacity: level * (m + 1))
        p.initialize(repeating: 0, count: level * (m + 1))
        return p
    }

    func randomLevel() -> Int {
        let u = rng.unit()
        return min(Int(-log(max(u, 1e-300)) * levelMultiplier), 31)
    }

    /// Allocates a node for `slot` with its vector copied (normalised under COSINE) and its level drawn:
    /// a free node when there is one (no live node links to it: its old links and level are replaced),
    /// otherwise a new one at the end.
    private func allocateNode(slot: UInt32, vector source: UnsafePointer<Float>) -> UInt32 {
        let level = randomLevel()
        let node: UInt32
        if let free = freeNodes.popLast() {
            node = free
            upperLinks[Int(node)]?.deallocate()
            upperLinks[Int(node)] = HNSWIndex.allocateUpper(level: level, m: m)
            levels[Int(node)] = UInt8(level)
            slots[Int(node)] = slot
            deleted[Int(node)] = false
        } else {
            reserve(count + 1)
            node = UInt32(count)
            (level0 + count * stride + dimension * 4).bindMemory(to: UInt32.self, capacity: m0 + 1)
            levels.append(UInt8(level))
            upperLinks.append(HNSWIndex.allocateUpper(level: level, m: m))
            slots.append(slot)
            deleted.append(false)
            inRepairBatch.append(false)
            count += 1
        }
        let dst = (level0 + Int(node) * stride).bindMemory(to: Float.self, capacity: dimension)
        dst.update(from: source, count: dimension)
        if metric == .cosine {
            let inv = DistanceKernels.inverseNorm(dst, dimension)
            for i in 0..<dimension { dst[i] *= inv }
        }
        links0(node)[0] = 0
        return node
    }

    // MARK: Links

    /// The neighbors of `node` at `level`, copied (so a concurrent builder may rewrite them meanwhile).
    /// A node without that level has none: a tombstone's stale upper link may name a node that was freed
    /// and reused with a lower level.
    @inline(__always)
    func withLinks<T>(_ node: UInt32, _ level: Int, locked: Bool, _ body: (UnsafeBufferPointer<UInt32>) -> T) -> T {
        if locked { stripes.lock(node) }
        defer { if locked { stripes.unlock(node) } }
        if level == 0 {
            let base = links0(node)
            return body(UnsafeBufferPointer(start: base + 1, count: Int(base[0])))
        }
        // Invariant: levels[node] > 0 exactly when upperLinks[node] holds levels[node] lists.
        guard level <= Int(levels[Int(node)]), let upper = upperLinks[Int(node)] else { return body(UnsafeBufferPointer(start: nil, count: 0)) }
        let base = upper + (level - 1) * (m + 1)
        return body(UnsafeBufferPointer(start: base + 1, count: Int(base[0])))
    }

    func setLinks(_ node: UInt32, _ level: Int, _ neighbors: [UInt32]) {
        if level == 0 {
            let base = links0(node)
            base[0] = UInt32(neighbors.count)
            for (i, n) in neighbors.enumerated() { base[1 + i] = n }
        } else {
            let base = (level - 1) * (m + 1)
            // Callers set lists only at levels the node has (checked by `withLinks` readers and the loader).
            guard level <= Int(levels[Int(node)]), let upper = upperLinks[Int(node)] else { return }
            let list = upper + base
            list[0] = UInt32(neighbors.count)
            for (i, n) in neighbors.enumerated() { list[1 + i] = n }
        }
    }

    // MARK: Search

    /// Greedy descent through one upper layer: move to any closer neighbor until none is closer.
    private func greedy(_ q: UnsafePointer<Float>, from start: Neighbor, level: Int, locked: Bool) -> Neighbor {
        var current = start
        var changed = true
        while changed {
            changed = false
            let next: Neighbor? = withLinks(current.slot, level, locked: locked) { links in
                var best: Neighbor?
                for n in links {
                    let d = distance(q, n)
                    if d < (best?.distance ?? current.distance) { best = Neighbor(slot: n, distance: d) }
                }
                return best
            }
            if let next {
                current = next
                changed = true
            }
        }
        return current
    }

    /// Best-first search of one layer keeping the `ef` closest nodes (Algorithm 2 of the paper), into
    /// `scratch.results`. Deleted nodes are traversed but, with `skipDeleted`, not kept.
    /// `Neighbor.slot` holds node ids here.
    private func searchLayer(_ q: UnsafePointer<Float>, entry: Neighbor, ef: Int, level: Int, skipDeleted: Bool,
                             locked: Bool, scratch: SearchScratch, allows: SlotPredicate? = nil) {
        // Local copies: mutating a class's stored properties in this loop would pay a dynamic
        // exclusivity check per access. The heaps are handles to scratch memory, written back at the end.
        var candidates = scratch.candidates
        var results = scratch.results
        defer {
            scratch.candidates = candidates
            scratch.results = results
        }
        deleted.withUnsafeBufferPointer { deleted in
            _ = scratch.visit(entry.slot)
            candidates.push(entry)
            // A node is kept when it is live (with `skipDeleted`) and its slot is allowed; every node is a
            // waypoint. Under a filter the result list only fills with allowed nodes, so the walk goes on
            // until it holds `ef` of them (or the graph is exhausted): the hnswlib / FAISS filtered walk.
            let slotOfNode = slots
            if (!skipDeleted || !deleted[Int(entry.slot)]) && allows?(slotOfNode[Int(entry.slot)]) != false { results.push(entry) }
            var bound = results.isEmpty ? Float.infinity : results.top.distance
            while !candidates.isEmpty {
                let c = candidates.pop()
                if c.distance > bound && results.count >= ef { break }
                withLinks(c.slot, level, locked: locked) { links in
                    guard let first = links.first else { return }
                    if level == 0 { latent_prefetch(vector(first)) }
                    for j in 0..<links.count {
                        let n = links[j]
                        if j + 1 < links.count {
                            // Fetch the next neighbor's vector and mark while this one is compared.
                            latent_prefetch(scratch.markAddress(links[j + 1]))
                            latent_prefetch(vector(links[j + 1]))
                        }
                        guard scratch.visit(n) else { continue }
                        let d = distance(q, n)
                        if results.count < ef || d < bound {
                            candidates.push(Neighbor(slot: n, distance: d))
                            if (!skipDeleted || !deleted[Int(n)]) && allows?(slotOfNode[Int(n)]) != false {
                                if results.count < ef {
                                    results.push(Neighbor(slot: n, distance: d))
                                } else {
                                    results.replaceTop(Neighbor(slot: n, distance: d))
                                }
                            }
                            if !results.isEmpty { bound = results.top.distance }
                        }
                    }
                }
            }
        }
    }

    public func search(_ query: UnsafePointer<Float>, _ params: SearchParameters) -> [Neighbor] {
        guard maxLevel >= 0, liveCount > 0 else { return [] }
        let ef = max(params.ef ?? max(100, params.k), params.k)
        return withComparable(query, dimension: dimension) { q in
            var ep = Neighbor(slot: entryPoint, distance: distance(q, entryPoint))
            var level = maxLevel
            while level > 0 {
                ep = greedy(q, from: ep, level: level, locked: false)
                level -= 1
            }
            let scratch = scratchPool.take(nodes: count)
            defer { scratchPool.give(scratch) }
            searchLayer(q, entry: ep, ef: ef, level: 0, skipDeleted: true, locked: false, scratch: scratch, allows: params.allows)
            while scratch.results.count > params.k { scratch.results.pop() }
            return scratch.results.items.sorted { $0.distance < $1.distance }
                .map { Neighbor(slot: slots[Int($0.slot)], distance: external($0.distance)) }
        }
    }

    // MARK: Insert

    /// Keeps at most `limit` of `candidates` (sorted nearest first), skipping any that is closer to an
    /// already kept neighbor than to the new node: links then spread in all directions instead of
    /// crowding into one cluster, which is what keeps the graph navigable (the paper's Algorithm 4).
    func selectNeighbors(_ candidates: [Neighbor], limit: Int) -> [Neighbor] {
        guard candidates.count > limit else { return candidates }
        var kept: [Neighbor] = []
        kept.reserveCapacity(limit)
        for c in candidates {
            var good = true
            for k in kept where distance(vector(c.slot), k.slot) < c.distance {
                good = false
                break
            }
            if good {
                kept.append(c)
                if kept.count >= limit { break }
            }
        }
        return kept
    }

    /// Links `node` into the graph (Algorithm 1). `locked` when other threads insert at the same time.
    private func link(_ node: UInt32, locked: Bool) {
        let level = Int(levels[Int(node)])
        let q = vector(node)
        if locked { entryLock.lock() }
        let top = maxLevel
        let entry = entryPoint
        if top < 0 {
            entryPoint = node
            maxLevel = level
            if locked { entryLock.unlock() }
            return
        }
        // Holding the entry lock while a node that raises the top level links keeps a second such node
        // from linking against a half-built top layer.
        let raisesTop = level > top
        if locked && !raisesTop { entryLock.unlock() }
        defer { if locked && raisesTop { entryLock.unlock() } }

        var ep = Neighbor(slot: entry, distance: distance(q, entry))
        var l = top
        while l > level {
            ep = greedy(q, from: ep, level: l, locked: locked)
            l -= 1
        }
        let scratch = scratchPool.take(nodes: count)
        defer { scratchPool.give(scratch) }
        for l in Swift.stride(from: min(level, top), through: 0, by: -1) {
            scratch.reset(nodes: count)
            // Tombstones are traversed, never chosen: a repair pass relies on no new link reaching them.
            searchLayer(q, entry: ep, ef: efConstruction, level: l, skipDeleted: true, locked: locked, scratch: scratch)
            let sorted = scratch.results.items.sorted { $0.distance < $1.distance }
            let chosen = selectNeighbors(sorted.filter { $0.slot != node }, limit: m)
            if locked { stripes.lock(node) }
            // Another builder may already have linked to this node at this level (it can reach the
            // node through a layer above, linked first). Keep those links: overwriting them would
            // orphan that builder's node. Merge and prune instead.
            let earlier: [UInt32] = withLinks(node, l, locked: false) { Array($0) }
            if earlier.isEmpty {
                setLinks(node, l, chosen.map(\.slot))
            } else {
                var merged = chosen
                for e in earlier where !merged.contains(where: { $0.slot == e }) {
                    merged.append(Neighbor(slot: e, distance: distance(q, e)))
                }
                merged.sort { $0.distance < $1.distance }
                setLinks(node, l, selectNeighbors(merged, limit: l == 0 ? m0 : m).map(\.slot))
            }
            if locked { stripes.unlock(node) }
            let maxLinks = l == 0 ? m0 : m
            for c in chosen { addBackLink(from: c.slot, to: node, level: l, maxLinks: maxLinks, locked: locked) }
            if let nearest = sorted.first { ep = nearest }
        }
        if raisesTop {
            entryPoint = node
            maxLevel = level
        }
    }

    /// Adds `node` to `from`'s links at `level`, pruning with the same heuristic when they overflow.
    private func addBackLink(from: UInt32, to node: UInt32, level: Int, maxLinks: Int, locked: Bool) {
        if locked { stripes.lock(from) }
        defer { if locked { stripes.unlock(from) } }
        var current: [UInt32] = withLinks(from, level, locked: false) { Array($0) }
        if current.contains(node) { return }
        if current.count < maxLinks {
            current.append(node)
            setLinks(from, level, current)
            return
        }
        let base = vector(from)
        current.append(node)
        let candidates = current.map { Neighbor(slot: $0, distance: distance(base, $0)) }.sorted { $0.distance < $1.distance }
        setLinks(from, level, selectNeighbors(candidates, limit: maxLinks).map(\.slot))
    }

    /// Adds (or replaces) the vector of `slot`. The replaced node, if any, is marked deleted.
    public func add(slot: UInt32, vector: UnsafePointer<Float>) {
        remove(slot: slot)
        let node = allocateNode(slot: slot, vector: vector)
        nodeOfSlot[slot] = node
        link(node, locked: false)
    }

    /// Makes `slot`'s node a tombstone; a repair pass later unlinks and frees it.
    public func remove(slot: UInt32) {
        guard let node = nodeOfSlot.removeValue(forKey: slot) else { return }
        deleted[Int(node)] = true
        deletedCount += 1
        tombstones.append(node)
    }

    /// Inserts `newSlots` (their vectors back to back at `vectors`) using `threads` threads: a build
    /// when the index is empty, a catch-up with writes that arrived during a build otherwise. Only for an
    /// index no search uses yet. `progress` is called now and then with the number linked so far;
    /// returning false cancels (the index is then unusable).
    public func build(slots newSlots: [UInt32], vectors source: UnsafePointer<Float>, threads: Int,
                      progress: (Int) -> Bool = { _ in true }) -> Bool {
        reserve(count + newSlots.count)
        let first = count
        for (i, slot) in newSlots.enumerated() {
            remove(slot: slot)
            nodeOfSlot[slot] = allocateNode(slot: slot, vector: source + i * dimension)
        }
        let n = newSlots.count
        guard n > 0 else { return true }
        let next = AtomicCounter()
        let cancelled = AtomicFlag()
        let chunk = 256
        let workers = max(1, min(threads, n / 1000 + 1))
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            while !cancelled.isSet {
                let start = next.add(chunk)
                if start >= n { break }
                for i in start..<min(n, start + chunk) { link(UInt32(first + i), locked: workers > 1) }
                if !progress(min(n, start + chunk)) { cancelled.set() }
            }
        }
        return !cancelled.isSet
    }
}

