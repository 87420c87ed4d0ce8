import LatentVectors

/// Exact search: every live vector is compared with the query. It holds nothing of its own and scans
/// the collection's contiguous buffer. Also the reference the approximate indexes are measured against
/// (`VSIM ... TRUTH`).
public final class FlatIndex: VectorIndex {
    public let metric: Metric
    private let buffer: VectorBuffer
    public var spec: IndexSpec { .flat }
    public var dimension: Int { buffer.dimension }
    public var scansCollectionBuffer: Bool { true }
    public var memoryBytes: Int { 0 }
    public var cheapToAdd: Bool { true }
    public var liveCount: Int { buffer.liveCount }
    public var deletedCount: Int { 0 }

    public init(metric: Metric, buffer: VectorBuffer) {
        self.metric = metric
        self.buffer = buffer
    }

    public func add(slot: UInt32, vector: UnsafePointer<Float>) {}
    public func remove(slot: UInt32) {}
    public func contains(slot: UInt32) -> Bool { buffer.isLive(Int(slot)) }
    public var indexedSlots: [UInt32] { (0..<buffer.slotCount).filter { buffer.isLive($0) }.map { UInt32($0) } }
    public func matches(slot: UInt32, vector: UnsafePointer<Float>) -> Bool { buffer.isLive(Int(slot)) }

    public func search(_ query: UnsafePointer<Float>, _ params: SearchParameters) -> [Neighbor] {
        FlatIndex.scan(query, in: buffer, metric: metric, k: params.k, allows: params.allows, ranksBefore: { $0 < $1 })
    }

    /// Vectors per call of the block kernel: large enough to amortise the call, small enough that the
    /// distances stay in L1.
    static let block = 256

    /// The exact top-k over every live slot of `buffer` that `allows` accepts (asked only of slots close
    /// enough to enter the top-k), ties ordered by `ranksBefore`.
    public static func scan(_ query: UnsafePointer<Float>, in buffer: VectorBuffer, metric: Metric, k: Int,
                            allows: SlotPredicate? = nil, ranksBefore: @escaping (UInt32, UInt32) -> Bool) -> [Neighbor] {
        var top = TopK(k: k, ranksBefore: ranksBefore)
        let n = buffer.slotCount
        withUnsafeTemporaryAllocation(of: Float.self, capacity: block) { distances in
            let out = distances.baseAddress!
            var start = 0
            while start < n {
                let count = min(block, n - start)
                DistanceKernels.distances(metric, query: query, base: buffer.vector(start), count: count,
                                          dimension: buffer.dimension, invNorms: buffer.inverseNorms(from: start), out: out)
                var threshold = top.threshold
                for i in 0..<count where out[i] <= threshold && buffer.isLive(start + i)
                    && allows?(UInt32(start + i)) != false {
                    top.push(UInt32(start + i), out[i])
                    threshold = top.threshold
                }
                start += count
            }
        }
        return top.sorted()
    }

    /// The exact top-k over the given slots only (a collection's not-yet-indexed tail).
    public static func scan(_ query: UnsafePointer<Float>, slots: [UInt32], in buffer: VectorBuffer, metric: Metric,
                            k: Int, allows: SlotPredicate? = nil, ranksBefore: @escaping (UInt32, UInt32) -> Bool) -> [Neighbor] {
        var top = TopK(k: k, ranksBefore: ranksBefore)
        let dim = buffer.dimension
        let qInv = DistanceKernels.inverseNorm(query, dim)
        for slot in slots where buffer.isLive(Int(slot)) && allows?(slot) != false {
            top.push(slot, DistanceKernels.distance(metric, query, buffer.vector(Int(slot)), dim,
                                                    invNormA: qInv, invNormB: buffer.inverseNorm(Int(slot))))
        }
        return top.sorted()
    }

    /// The exact top-k over rows stored back to back (`slots.count` vectors of `dimension` floats at
    /// `rows`, reciprocal norms at `invNorms`), row i standing for `slots[i]`; `excludes` is asked only of
    /// rows close enough to enter the top-k.
    public static func scan(_ query: UnsafePointer<Float>, rows: UnsafePointer<Float>, invNorms: UnsafePointer<Float>,
                            slots: [UInt32], dimension: Int, metric: Metric, k: Int, excludes: SlotPredicate?,
                            ranksBefore: @escaping (UInt32, UInt32) -> Bool) -> [Neighbor] {
        var top = TopK(k: k, ranksBefore: ranksBefore)
        let n = slots.count
        slots.withUnsafeBufferPointer { slots in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: block) { distances in
                let out = distances.baseAddress!  // capacity `block` > 0
                var start = 0
                while start < n {
                    let count = min(block, n - start)
                    // Invariant: rows start..<start+count exist (start + count <= slots.count rows).
                    DistanceKernels.distances(metric, query: query, base: rows + start * dimension, count: count,
                                              dimension: dimension, invNorms: invNorms + start, out: out)
                    var threshold = top.threshold
                    for i in 0..<count where out[i] <= threshold && excludes?(slots[start + i]) != true {
                        top.push(slots[start + i], out[i])
                        threshold = top.threshold
                    }
                    start += count
                }
            }
        }
        return top.sorted()
    }
}
