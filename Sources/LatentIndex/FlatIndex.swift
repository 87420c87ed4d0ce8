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

    /// The exact top-k over every live slot.
    public static func scan(_ query: UnsafePointer<Float>, in buffer: VectorBuffer, metric: Metric, k: Int,
                            ranksBefore: @escaping (UInt32, UInt32) -> Bool) -> [Neighbor] {
        var top = TopK(k: k, ranksBefore: ranksBefore)
        let dim = buffer.dimension
        let qInv = DistanceKernels.inverseNorm(query, dim)
        let n = buffer.slotCount
        var slot = 0
        // One switch outside the loop so each loop body is a single straight kernel call.
        switch metric {
        case .l2:
            while slot < n {
                if buffer.isLive(slot) {
                    top.push(UInt32(slot), DistanceKernels.l2Squared(query, buffer.vector(slot), dim))
                }
                slot += 1
            }
        case .ip:
            while slot < n {
                if buffer.isLive(slot) {
                    top.push(UInt32(slot), -DistanceKernels.dot(query, buffer.vector(slot), dim))
                }
                slot += 1
            }
        case .cosine:
            while slot < n {
                if buffer.isLive(slot) {
                    top.push(UInt32(slot), DistanceKernels.distance(.cosine, query, buffer.vector(slot), dim,
                                                                    invNormA: qInv, invNormB: buffer.inverseNorm(slot)))
                }
                slot += 1
            }
        }
        return top.sorted()
    }
}
