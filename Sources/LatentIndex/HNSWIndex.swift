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
/// Deletes and replacements mark the old node deleted: it is still traversed (the graph stays
/// connected), never returned. The collection rebuilds the index when deleted nodes pass a fraction
/// of the graph, so the graph cannot grow without bound under delete/re-insert loops (mark and reclaim).
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
    public var infoFields: [(String, String)] { [("m", String(m)), ("ef-construction", String(efConstruction))] }

    /// Inserts one by one are cheaper than a parallel build only for a short tail; deleted nodes kept
    /// as waypoints cost memory and search time once they are a quarter of the graph.
    public static let incrementalLimit = 5_000

    public func wantsRebuild(requested: IndexSpec, live: Int, pending: Int) -> Bool {
        !spec.satisfies(requested) || pending > max(HNSWIndex.incrementalLimit, liveCount / 5)
            || deletedCount > max(1_000, liveCount / 4)
    }

    public func addBatch(slots: [UInt32], vectors: UnsafePointer<Float>, threads: Int,
                         shouldContinue: @escaping (Int) -> Bool) -> Bool {
        build(slots: slots, vectors: vectors, threads: threads, progress: shouldContinue)
    }

    /// COSINE is served as inner product over normalised vectors: one dot product per comparison.
    private let kernelMetric: Metric
    private let levelMultiplier: Double
    fileprivate var rng: SplitMix64

    private(set) var capacity: Int
    public fileprivate(set) var count = 0
    /// Per node: `dimension` floats, then `m0 + 1` link words, padded to `stride` bytes.
    fileprivate var level0: UnsafeMutableRawPointer
    fileprivate let stride: Int
    /// Per node above layer 0: `level x (m + 1)` words in raw memory (nil at layer 0). Raw memory, not
    /// nested arrays: parallel builders rewrite different nodes' lists at once, and a Swift array of
    /// arrays would copy-on-write under them and lose updates.
    fileprivate var upperLinks: [UnsafeMutablePointer<UInt32>?] = []
    fileprivate var levels: [UInt8] = []
    fileprivate(set) var slots: [UInt32] = []
    fileprivate var deleted: [Bool] = []
    public fileprivate(set) var deletedCount = 0
    fileprivate var nodeOfSlot: [UInt32: UInt32] = [:]
    fileprivate var entryPoint: UInt32 = 0
    fileprivate var maxLevel = -1

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
        levelMultiplier = 1 / log(Double(self.m))
        rng = SplitMix64(seed: seed)
        // Capacity 0 is allowed: an empty collection's graph allocates nothing until its first node.
        self.capacity = max(capacity, 0)
        stripes = StripedLocks(count: min(4096, max(16, self.capacity)))
        stride = (dimension * 4 + (m0 + 1) * 4 + 63) / 64 * 64
        level0 = .allocate(byteCount: max(64, self.capacity * stride), alignment: 64)
    }

    deinit {
        level0.deallocate()
        for p in upperLinks { p?.deallocate() }
    }

    public var liveCount: Int { count - deletedCount }
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
    fileprivate func vector(_ node: UInt32) -> UnsafePointer<Float> {
        UnsafePointer((level0 + Int(node) * stride).assumingMemoryBound(to: Float.self))
    }

    /// Layer-0 links of `node`: `[count, id, id, ...]`.
    @inline(__always)
    fileprivate func links0(_ node: UInt32) -> UnsafeMutablePointer<UInt32> {
        (level0 + Int(node) * stride + dimension * 4).assumingMemoryBound(to: UInt32.self)
    }

    @inline(__always)
    private func distance(_ q: UnsafePointer<Float>, _ node: UInt32) -> Float {
        kernelMetric == .l2 ? DistanceKernels.l2Squared(q, vector(node), dimension)
                            : -DistanceKernels.dot(q, vector(node), dimension)
    }

    /// The internal distance users of the protocol expect (COSINE: 1 - cos).
    @inline(__always)
    private func external(_ d: Float) -> Float { metric == .cosine ? 1 + d : d }

    fileprivate static func allocateUpper(level: Int, m: Int) -> UnsafeMutablePointer<UInt32>? {
        guard level > 0 else { return nil }
        let p = UnsafeMutablePointer<UInt32>.allocate(capacity: level * (m + 1))
        p.initialize(repeating: 0, count: level * (m + 1))
        return p
    }

    private func randomLevel() -> Int {
        let u = rng.unit()
        return min(Int(-log(max(u, 1e-300)) * levelMultiplier), 31)
    }

    /// Allocates a node for `slot` with its vector copied (normalised under COSINE) and its level drawn.
    private func allocateNode(slot: UInt32, vector source: UnsafePointer<Float>) -> UInt32 {
        reserve(count + 1)
        let node = UInt32(count)
        let dst = (level0 + count * stride).bindMemory(to: Float.self, capacity: dimension)
        dst.update(from: source, count: dimension)
        (level0 + count * stride + dimension * 4).bindMemory(to: UInt32.self, capacity: m0 + 1)
        if metric == .cosine {
            let inv = DistanceKernels.inverseNorm(dst, dimension)
            for i in 0..<dimension { dst[i] *= inv }
        }
        links0(node)[0] = 0
        let level = randomLevel()
        levels.append(UInt8(level))
        upperLinks.append(HNSWIndex.allocateUpper(level: level, m: m))
        slots.append(slot)
        deleted.append(false)
        count += 1
        return node
    }

    // MARK: Links

    /// The neighbors of `node` at `level`, copied (so a concurrent builder may rewrite them meanwhile).
    @inline(__always)
    private func withLinks<T>(_ node: UInt32, _ level: Int, locked: Bool, _ body: (UnsafeBufferPointer<UInt32>) -> T) -> T {
        if locked { stripes.lock(node) }
        defer { if locked { stripes.unlock(node) } }
        if level == 0 {
            let base = links0(node)
            return body(UnsafeBufferPointer(start: base + 1, count: Int(base[0])))
        }
        let base = upperLinks[Int(node)]! + (level - 1) * (m + 1)
        return body(UnsafeBufferPointer(start: base + 1, count: Int(base[0])))
    }

    private func setLinks(_ node: UInt32, _ level: Int, _ neighbors: [UInt32]) {
        if level == 0 {
            let base = links0(node)
            base[0] = UInt32(neighbors.count)
            for (i, n) in neighbors.enumerated() { base[1 + i] = n }
        } else {
            let base = (level - 1) * (m + 1)
            let list = upperLinks[Int(node)]! + base
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
                             locked: Bool, scratch: SearchScratch) {
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
            if !skipDeleted || !deleted[Int(entry.slot)] { results.push(entry) }
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
                            if !skipDeleted || !deleted[Int(n)] {
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
            searchLayer(q, entry: ep, ef: ef, level: 0, skipDeleted: true, locked: false, scratch: scratch)
            while scratch.results.count > params.k { scratch.results.pop() }
            return scratch.results.items.sorted { $0.distance < $1.distance }
                .map { Neighbor(slot: slots[Int($0.slot)], distance: external($0.distance)) }
        }
    }

    // MARK: Insert

    /// Keeps at most `limit` of `candidates` (sorted nearest first), skipping any that is closer to an
    /// already kept neighbor than to the new node: links then spread in all directions instead of
    /// crowding into one cluster, which is what keeps the graph navigable (the paper's Algorithm 4).
    private func selectNeighbors(_ candidates: [Neighbor], limit: Int) -> [Neighbor] {
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
            searchLayer(q, entry: ep, ef: efConstruction, level: l, skipDeleted: false, locked: locked, scratch: scratch)
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

    public func remove(slot: UInt32) {
        guard let node = nodeOfSlot.removeValue(forKey: slot) else { return }
        deleted[Int(node)] = true
        deletedCount += 1
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

extension HNSWIndex {
    /// Live nodes that no other node links to at layer 0: reachable only through upper layers, if at
    /// all. A diagnostic for graph quality (the benchmark prints it).
    public var unreferencedNodes: Int {
        var referenced = [Bool](repeating: false, count: count)
        for node in 0..<count {
            let l = links0(UInt32(node))
            for j in 0..<Int(l[0]) { referenced[Int(l[1 + j])] = true }
        }
        return (0..<count).filter { !referenced[$0] && !deleted[$0] && UInt32($0) != entryPoint }.count
    }

    public var indexedSlots: [UInt32] { Array(nodeOfSlot.keys) }

    public func matches(slot: UInt32, vector: UnsafePointer<Float>) -> Bool {
        guard let node = nodeOfSlot[slot] else { return false }
        return sameVector(self.vector(node), vector, dimension: dimension)
    }

    // Payload: m, efConstruction, count u32; maxLevel i32; entry point u32; generator state u64;
    // slots (count u32); levels (count u8); deleted flags (count u8); the layer-0 block (count x stride
    // bytes: vector then links); then each upper-layer node's links (level x (m + 1) u32).
    func serialize(into w: inout ByteWriter) {
        w.u32(UInt32(m))
        w.u32(UInt32(efConstruction))
        w.u32(UInt32(count))
        w.i32(Int32(maxLevel))
        w.u32(entryPoint)
        w.u64(rng.state)
        w.u32s(slots)
        w.bytes(levels)
        w.bytes(deleted.map { $0 ? 1 : 0 })
        w.raw(level0, count * stride)
        for node in 0..<count where levels[node] > 0 { w.raw(upperLinks[node]!, Int(levels[node]) * (m + 1) * 4) }
    }

    static func deserialize(_ r: inout ByteReader, metric: Metric, dimension: Int) throws -> HNSWIndex {
        let m = Int(try r.u32()), efConstruction = Int(try r.u32()), count = Int(try r.u32())
        let maxLevel = Int(try r.i32())
        let entry = try r.u32()
        let state = try r.u64()
        guard (2...512).contains(m), count >= 0, count * 6 <= r.remaining, maxLevel < 32,
              count == 0 ? maxLevel == -1 : (Int(entry) < count && maxLevel >= 0) else {
            throw SnapshotError("HNSW snapshot header is inconsistent")
        }
        let index = HNSWIndex(metric: metric, dimension: dimension, m: m, efConstruction: efConstruction, capacity: max(count, 16))
        index.rng.state = state
        index.slots = try r.u32s(count)
        index.levels = try r.bytes(count)
        index.deleted = try r.bytes(count).map { $0 != 0 }
        guard count * index.stride <= r.remaining else { throw SnapshotError("HNSW snapshot truncated") }
        try r.copy(count * index.stride, to: index.level0)
        index.count = count
        index.upperLinks = try index.levels.map { level in
            let p = HNSWIndex.allocateUpper(level: Int(level), m: m)
            if let p { try r.copy(Int(level) * (m + 1) * 4, to: p) }
            return p
        }
        // Every link must point at a node and fit its list: a snapshot that passed the checksum but was
        // written by a buggy build must not send a search out of bounds.
        for node in 0..<count {
            let l0 = index.links0(UInt32(node))
            guard Int(l0[0]) <= index.m0, (0..<Int(l0[0])).allSatisfy({ Int(l0[1 + $0]) < count }),
                  Int(index.levels[node]) <= maxLevel else { throw SnapshotError("HNSW snapshot has a bad link list") }
            for level in 0..<Int(index.levels[node]) {
                let base = level * (m + 1), links = index.upperLinks[node]!
                guard Int(links[base]) <= m, (0..<Int(links[base])).allSatisfy({ Int(links[base + 1 + $0]) < count }) else {
                    throw SnapshotError("HNSW snapshot has a bad upper link list")
                }
            }
            if index.deleted[node] { index.deletedCount += 1 } else { index.nodeOfSlot[index.slots[node]] = UInt32(node) }
        }
        index.entryPoint = entry
        index.maxLevel = maxLevel
        return index
    }
}

/// Search scratch reused across searches (one per concurrent search).
/// Guarding: `free` is guarded by `lock`.
final class ScratchPool: @unchecked Sendable {
    private let lock = NSLock()
    private var free: [SearchScratch] = []

    func take(nodes: Int) -> SearchScratch {
        lock.lock()
        let s = free.popLast()
        lock.unlock()
        let scratch = s ?? SearchScratch(capacity: nodes)
        scratch.reset(nodes: nodes)
        return scratch
    }

    func give(_ s: SearchScratch) {
        lock.lock()
        free.append(s)
        lock.unlock()
    }
}

/// A fixed set of mutexes shared by many nodes (node % count): per-node locks without per-node memory.
/// Guarding: the mutexes are their own synchronisation; the pointer and count are immutable.
final class StripedLocks: @unchecked Sendable {
    private let locks: UnsafeMutablePointer<pthread_mutex_t>
    private let count: Int

    init(count: Int) {
        self.count = count
        locks = .allocate(capacity: count)
        for i in 0..<count { pthread_mutex_init(locks + i, nil) }
    }

    deinit {
        for i in 0..<count { pthread_mutex_destroy(locks + i) }
        locks.deallocate()
    }

    @inline(__always) func lock(_ node: UInt32) { pthread_mutex_lock(locks + Int(node) % count) }
    @inline(__always) func unlock(_ node: UInt32) { pthread_mutex_unlock(locks + Int(node) % count) }
}

/// Guarding: `value` is guarded by `lock`.
final class AtomicCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    /// Adds `n`; returns the value before.
    func add(_ n: Int) -> Int {
        lock.lock()
        defer { lock.unlock() }
        let v = value
        value += n
        return v
    }
}

/// Guarding: `value` is guarded by `lock`.
final class AtomicFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
    func set() { lock.lock(); value = true; lock.unlock() }
}
