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

/// A binary heap of neighbors, specialised per order at compile time.
///
/// The graph search pushes and pops a few hundred entries per query; swift-collections' `Heap` is a min-max
/// heap (both ends, more comparisons per operation) and needs `Comparable` elements, so this plain
/// one-ended heap over an array, reused between queries, is what the hot loop uses.
struct NeighborHeap<Order: HeapOrder> {
    var items: [Neighbor] = []

    init(capacity: Int = 0) { items.reserveCapacity(capacity) }

    var isEmpty: Bool { items.isEmpty }
    var count: Int { items.count }
    var top: Neighbor { items[0] }

    mutating func removeAll() { items.removeAll(keepingCapacity: true) }

    mutating func push(_ n: Neighbor) {
        items.append(n)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) >> 1
            guard Order.above(items[i], items[parent]) else { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    @discardableResult
    mutating func pop() -> Neighbor {
        let result = items[0]
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            let n = items.count
            while true {
                let l = 2 * i + 1, r = l + 1
                var best = i
                if l < n && Order.above(items[l], items[best]) { best = l }
                if r < n && Order.above(items[r], items[best]) { best = r }
                if best == i { break }
                items.swapAt(i, best)
                i = best
            }
        }
        return result
    }
}

/// Marks visited nodes with a generation number, so clearing between queries is one increment.
final class VisitedSet {
    private var marks: [UInt16]
    private var generation: UInt16 = 1

    init(capacity: Int) { marks = [UInt16](repeating: 0, count: capacity) }

    func reset(capacity: Int) {
        if marks.count < capacity { marks.append(contentsOf: repeatElement(0, count: capacity - marks.count)) }
        generation &+= 1
        if generation == 0 {
            for i in marks.indices { marks[i] = 0 }
            generation = 1
        }
    }

    /// Marks `node`; returns false when it was already marked in this generation.
    @inline(__always)
    func insert(_ node: UInt32) -> Bool {
        let i = Int(node)
        if marks[i] == generation { return false }
        marks[i] = generation
        return true
    }
}
