import LatentVectors

/// Exact search: every live vector is compared with the query. Needs no structure of its own; the
/// buffer's contiguous layout keeps the scan sequential. Also the reference the approximate indexes
/// are measured against (`VSIM ... TRUTH`).
public final class FlatIndex: VectorIndex {
    public let metric: Metric
    public var spec: IndexSpec { .flat }
    public var memoryBytes: Int { 0 }

    public init(metric: Metric) {
        self.metric = metric
    }

    public func didSet(slot: UInt32, in buffer: VectorBuffer) {}
    public func didRemove(slot: UInt32, in buffer: VectorBuffer) {}

    public func search(_ query: UnsafePointer<Float>, in buffer: VectorBuffer, _ params: SearchParameters,
                       ranksBefore: @escaping (UInt32, UInt32) -> Bool) -> [Neighbor] {
        FlatIndex.scan(query, in: buffer, metric: metric, k: params.k, ranksBefore: ranksBefore)
    }

    /// Vectors per call of the block kernel: large enough to amortise the call, small enough that the
    /// distances stay in L1.
    static let block = 256

    /// The exact top-k over every live slot.
    public static func scan(_ query: UnsafePointer<Float>, in buffer: VectorBuffer, metric: Metric, k: Int,
                            ranksBefore: @escaping (UInt32, UInt32) -> Bool) -> [Neighbor] {
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
                for i in 0..<count where out[i] <= threshold && buffer.isLive(start + i) {
                    top.push(UInt32(start + i), out[i])
                    threshold = top.threshold
                }
                start += count
            }
        }
        return top.sorted()
    }
}
