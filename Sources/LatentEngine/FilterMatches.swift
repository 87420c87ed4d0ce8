import Foundation
import LatentIndex
import LatentVectors

/// The slots a filter expression matched, as a sorted list (the exact scan of the matches walks it) and a
/// bitmap (the index walk tests a node with one bit instead of running the expression).
///
/// A filter whose matches' vectors fit in `gatherLimit` bytes also gets, on demand:
/// - its vectors copied back to back (`GatheredVectors`), so its exact scan reads memory sequentially;
/// - once used `matchIndexAfterUses` times by searches that would walk the full graph or scan more than
///   `matchIndexMinFloats` floats of matches (applications repeat their filters, e.g. a category), a small
///   HNSW over those copies, the *match index*, built on the collection's background build queue. A
///   query with that filter then searches a graph of the matches only: it pays what an unfiltered search
///   of a collection that size pays, instead of walking the whole graph past non-matching nodes.
///
/// Both are tied to the collection buffer's `writeStamp` when the copy was taken: after any vector write
/// or delete they are not used (the copy is taken again on the next scan; the match index is rebuilt
/// after the next `matchIndexAfterUses` uses). Attribute changes replace the whole entry (the cache is
/// keyed by the attribute table's version).
///
/// Guarding: `slots`, `bits`, `gatherable` and `dimension` are immutable after init; `gathered`,
/// `matchIndex`, `uses` and `building` are guarded by `lock`, a leaf lock taken under the collection's
/// read lock or on the build queue.
public final class FilterMatches: @unchecked Sendable {
    let slots: [UInt32]
    private let bits: [UInt64]
    /// Whether the matches' vectors are small enough to copy (and to index).
    let gatherable: Bool
    private let dimension: Int
    private let lock = NSLock()
    private var gathered: GatheredVectors?
    private var matchIndex: MatchIndex?
    private var uses = 0
    private var building = false

    /// Most bytes of vectors copied for one filter (1% of 1M x 128 is 5 MiB).
    static let gatherLimit = 8 << 20
    /// Searches with this filter that could use its match index before it is built.
    static let matchIndexAfterUses = 16
    /// Matches whose vectors hold fewer floats than this (1 MiB) are scanned exactly even when a match
    /// index could answer: the scan is exact and about as fast (1% of synth128, 1,000 x 128: 32,800 QPS).
    static let matchIndexMinFloats = 1 << 18
    /// The match index's graph: HNSW's default M, a lower construction effort (it is rebuilt whenever the
    /// collection's vectors change, so it is built quickly; measured in docs/benchmarks.md).
    static let matchIndexM = 16
    static let matchIndexEfConstruction = 100

    /// A graph over a gathered copy: node slots are row numbers of `rows`.
    struct MatchIndex {
        let graph: HNSWIndex
        let rows: GatheredVectors
    }

    init(slots: [UInt32], dimension: Int) {
        self.slots = slots
        self.dimension = dimension
        gatherable = GatheredVectors.bytes(rows: slots.count, dimension: dimension) <= Self.gatherLimit
        var bits = [UInt64](repeating: 0, count: ((slots.last.map(Int.init) ?? -1) + 64) / 64)
        for s in slots { bits[Int(s >> 6)] |= 1 << UInt64(s & 63) }
        self.bits = bits
    }

    @inline(__always)
    func contains(_ slot: UInt32) -> Bool {
        let w = Int(slot >> 6)
        return w < bits.count && bits[w] & (1 << UInt64(slot & 63)) != 0
    }

    /// The matches' vectors as of `buffer`'s current contents, copied again when the buffer changed since
    /// the last copy; nil when there are too many. Call under the collection's read lock.
    func gatheredVectors(from buffer: VectorBuffer) -> GatheredVectors? {
        guard gatherable else { return nil }
        return lock.withLock { gatheredLocked(buffer) }
    }

    private func gatheredLocked(_ buffer: VectorBuffer) -> GatheredVectors {
        if let gathered, gathered.stamp == buffer.writeStamp { return gathered }
        let fresh = GatheredVectors(slots: slots, from: buffer)
        gathered = fresh
        return fresh
    }

    /// The match index when it is current for `buffer`. Otherwise counts a use and,
    /// at the `matchIndexAfterUses`-th since the last build, returns the work that builds it (to run on
    /// a background queue; it reads only the copy it captures). Call under the collection's read lock.
    func matchIndex(for buffer: VectorBuffer, metric: Metric) -> (ready: MatchIndex?, build: (@Sendable () -> Void)?) {
        guard gatherable else { return (nil, nil) }
        return lock.withLock {
            if let matchIndex, matchIndex.rows.stamp == buffer.writeStamp { return (matchIndex, nil) }
            uses += 1
            guard !building, uses >= Self.matchIndexAfterUses else { return (nil, nil) }
            uses = 0
            building = true
            let rows = gatheredLocked(buffer)
            let dimension = self.dimension
            return (nil, { [self] in
                let graph = HNSWIndex(metric: metric, dimension: dimension, m: Self.matchIndexM,
                                      efConstruction: Self.matchIndexEfConstruction, capacity: rows.slots.count)
                _ = rows.withRows { base in
                    graph.build(slots: (0..<rows.slots.count).map { UInt32($0) }, vectors: base, threads: 1)
                }
                lock.withLock {
                    matchIndex = MatchIndex(graph: graph, rows: rows)
                    building = false
                }
            })
        }
    }

    /// Whether a match index is built (VINFO, tests); it may be stale.
    var hasMatchIndex: Bool { lock.withLock { matchIndex != nil } }

    /// What this entry may hold, counting a gatherable one's copy and match index as taken (so the
    /// cache's byte bound holds whatever is built later).
    var memoryBytes: Int {
        guard gatherable else { return slots.count * 4 + bits.count * 8 }
        let rows = slots.count
        let graph = rows * (HNSWIndex.levelZeroStride(dimension: dimension, m: Self.matchIndexM) + 16)
        return rows * 4 + bits.count * 8 + GatheredVectors.bytes(rows: rows, dimension: dimension) + graph
    }
}
