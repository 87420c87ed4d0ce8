import LatentVectors

/// Which end of a `NeighborHeap` is on top.
protocol HeapOrder {
    static func above(_ a: Neighbor, _ b: Neighbor) -> Bool
}

/// Nearest on top: the candidate queue of a graph search.
enum NearestFirst: HeapOrder {
    @inline(__always) static func above(_ a: Neighbor, _ b: Neighbor) -> Bool { a.distance < b.distance }
}

/// Farthest on top: the bounded result set, whose top is the one to evict.
enum FarthestFirst: HeapOrder {
    @inline(__always) static func above(_ a: Neighbor, _ b: Neighbor) -> Bool { a.distance > b.distance }
}

/// A binary heap of neighbors over memory it owns, specialised per order at compile time.
///
/// The graph search pushes and pops a few hundred entries per query; swift-collections' `Heap` is a
/// min-max heap (more comparisons per operation) over a CoW array, and needs `Comparable` elements. This
/// one-ended heap is reused between queries (see `SearchScratch`), so the hot loop neither allocates
/// nor pays for uniqueness or bounds checks.
struct NeighborHeap<Order: HeapOrder> {
    private(set) var base: UnsafeMutablePointer<Neighbor>
    private(set) var count = 0
    private var capacity: Int

    init(capacity: Int) {
        self.capacity = max(capacity, 16)
        base = .allocate(capacity: self.capacity)
    }

    /// Frees the storage; the owner calls this exactly once.
    func deallocate() { base.deallocate() }

    var isEmpty: Bool { count == 0 }
    var top: Neighbor { base[0] }
    var items: UnsafeBufferPointer<Neighbor> { UnsafeBufferPointer(start: base, count: count) }

    mutating func removeAll() { count = 0 }

    private mutating func grow() {
        let bigger = UnsafeMutablePointer<Neighbor>.allocate(capacity: capacity * 2)
        bigger.update(from: base, count: count)
        base.deallocate()
        base = bigger
        capacity *= 2
    }

    mutating func push(_ n: Neighbor) {
        if count == capacity { grow() }
        var i = count
        count += 1
        while i > 0 {
            let parent = (i - 1) >> 1
            guard Order.above(n, base[parent]) else { break }
            base[i] = base[parent]
            i = parent
        }
        base[i] = n
    }

    @discardableResult
    mutating func pop() -> Neighbor {
        let result = base[0]
        count -= 1
        if count > 0 { siftDown(base[count]) }
        return result
    }

    /// Replaces the top with `n` in one pass (a pop and a push for the price of one).
    mutating func replaceTop(_ n: Neighbor) { siftDown(n) }

    private mutating func siftDown(_ n: Neighbor) {
        var i = 0
        while true {
            let l = 2 * i + 1
            if l >= count { break }
            let r = l + 1
            let child = (r < count && Order.above(base[r], base[l])) ? r : l
            guard Order.above(base[child], n) else { break }
            base[i] = base[child]
            i = child
        }
        base[i] = n
    }
}

/// What one search needs besides the graph: visited marks (a generation number per node, so clearing
/// between queries is one increment) and the two heaps. Pooled, one per concurrent search.
final class SearchScratch {
    private var marks: UnsafeMutablePointer<UInt16>
    private var capacity: Int
    private var generation: UInt16 = 1
    var candidates = NeighborHeap<NearestFirst>(capacity: 256)
    var results = NeighborHeap<FarthestFirst>(capacity: 256)

    init(capacity: Int) {
        self.capacity = max(capacity, 1)
        marks = .allocate(capacity: self.capacity)
        marks.initialize(repeating: 0, count: self.capacity)
    }

    deinit {
        marks.deallocate()
        candidates.deallocate()
        results.deallocate()
    }

    /// Starts a new search over a graph of `nodes` nodes.
    func reset(nodes: Int) {
        if nodes > capacity {
            marks.deallocate()
            capacity = max(nodes, capacity * 2)
            marks = .allocate(capacity: capacity)
            marks.initialize(repeating: 0, count: capacity)
            generation = 1
        } else {
            generation &+= 1
            if generation == 0 {
                marks.update(repeating: 0, count: capacity)
                generation = 1
            }
        }
        candidates.removeAll()
        results.removeAll()
    }

    /// The mark's address, for prefetching.
    @inline(__always)
    func markAddress(_ node: UInt32) -> UnsafeRawPointer { UnsafeRawPointer(marks + Int(node)) }

    /// Marks `node`; false when it was already marked in this search.
    @inline(__always)
    func visit(_ node: UInt32) -> Bool {
        let p = marks + Int(node)
        if p.pointee == generation { return false }
        p.pointee = generation
        return true
    }
}
