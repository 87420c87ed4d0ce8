/// One search hit: a slot (internal id) and its internal distance (lower is better).
public struct Neighbor: Equatable, Sendable {
    public var slot: UInt32
    public var distance: Float

    public init(slot: UInt32, distance: Float) {
        self.slot = slot
        self.distance = distance
    }
}

/// Keeps the k best neighbors seen so far in a binary max-heap whose top is the worst kept one,
/// so a candidate that cannot enter costs one comparison.
///
/// Hand-written rather than swift-collections' `Heap` because equal distances must be ordered by the
/// elements' external ids, which only the collection knows: the `ranksBefore` closure is asked on ties
/// alone, so the hot path never pays for it.
public struct TopK {
    public let k: Int
    @usableFromInline var heap: [Neighbor] = []
    @usableFromInline let ranksBefore: (UInt32, UInt32) -> Bool

    /// `ranksBefore(a, b)`: with equal distances, whether slot a is listed before slot b.
    public init(k: Int, ranksBefore: @escaping (UInt32, UInt32) -> Bool = { $0 < $1 }) {
        precondition(k > 0)
        self.k = k
        self.ranksBefore = ranksBefore
        heap.reserveCapacity(k)
    }

    public var count: Int { heap.count }

    /// The distance a candidate must beat (or tie) to enter; infinity while fewer than k are kept.
    @inlinable
    public var threshold: Float { heap.count < k ? .infinity : heap[0].distance }

    @inlinable @inline(__always)
    func worse(_ a: Neighbor, _ b: Neighbor) -> Bool {
        a.distance > b.distance || (a.distance == b.distance && ranksBefore(b.slot, a.slot))
    }

    @inlinable
    public mutating func push(_ slot: UInt32, _ distance: Float) {
        if heap.count < k {
            heap.append(Neighbor(slot: slot, distance: distance))
            siftUp(heap.count - 1)
        } else if distance <= heap[0].distance {
            let n = Neighbor(slot: slot, distance: distance)
            guard worse(heap[0], n) else { return }
            heap[0] = n
            siftDown(0)
        }
    }

    @usableFromInline
    mutating func siftUp(_ start: Int) {
        var i = start
        while i > 0 {
            let parent = (i - 1) / 2
            guard worse(heap[i], heap[parent]) else { return }
            heap.swapAt(i, parent)
            i = parent
        }
    }

    @usableFromInline
    mutating func siftDown(_ start: Int) {
        var i = start
        let n = heap.count
        while true {
            let l = 2 * i + 1, r = l + 1
            var top = i
            if l < n && worse(heap[l], heap[top]) { top = l }
            if r < n && worse(heap[r], heap[top]) { top = r }
            if top == i { return }
            heap.swapAt(i, top)
            i = top
        }
    }

    /// The kept neighbors, best first.
    public func sorted() -> [Neighbor] {
        heap.sorted { worse($1, $0) }
    }
}
