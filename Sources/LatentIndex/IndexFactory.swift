import LatentVectors

/// Makes indexes from an `IndexSpec`: the one place that knows which kinds exist. The engine asks it
/// for an empty index and for a built one, and from then on talks to `VectorIndex` only.
public enum IndexFactory {
    /// The index a collection starts with (and holds until its first build): FLAT is the buffer itself,
    /// HNSW an empty graph that grows by inserts, IVF untrained (everything searched exactly).
    public static func empty(_ spec: IndexSpec, metric: Metric, dimension: Int, buffer: VectorBuffer) -> VectorIndex {
        let spec = spec.resolved
        switch spec.kind {
        case .flat:
            return FlatIndex(metric: metric, buffer: buffer)
        case .hnsw:
            // Created small: an empty collection costs a few KB, and the graph doubles as it grows.
            return HNSWIndex(metric: metric, dimension: dimension, m: spec.m ?? IndexSpec.defaultM,
                             efConstruction: spec.efConstruction ?? IndexSpec.defaultEfConstruction, capacity: 0)
        case .ivf:
            return IVFFlatIndex.untrained(metric: metric, dimension: dimension, nlist: spec.nlist)
        }
    }

    /// A full build (train + add) over `slots.count` rows of `vectors`, using up to `threads` threads.
    /// `progress(fraction)` returning false cancels it (nil). FLAT has nothing to build (nil).
    public static func build(_ spec: IndexSpec, metric: Metric, dimension: Int, slots: [UInt32], vectors: UnsafePointer<Float>,
                             threads: Int, progress: @escaping (Double) -> Bool) -> VectorIndex? {
        let spec = spec.resolved
        switch spec.kind {
        case .flat:
            return nil
        case .hnsw:
            let hnsw = HNSWIndex(metric: metric, dimension: dimension, m: spec.m ?? IndexSpec.defaultM,
                                 efConstruction: spec.efConstruction ?? IndexSpec.defaultEfConstruction, capacity: slots.count)
            let n = Double(max(slots.count, 1))
            return hnsw.build(slots: slots, vectors: vectors, threads: threads) { progress(Double($0) / n) } ? hnsw : nil
        case .ivf:
            guard !slots.isEmpty else { return nil }
            return IVFFlatIndex.build(metric: metric, dimension: dimension, slots: slots, vectors: vectors,
                                      nlist: spec.nlist, threads: threads, progress: progress)
        }
    }
}
