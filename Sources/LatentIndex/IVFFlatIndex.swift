import Foundation
import LatentVectors

/// Inverted file with flat lists (as FAISS' IndexIVFFlat): k-means splits the space into `nlist` cells;
/// each vector lives in the list of its nearest centroid; a query scans only the `nprobe` lists whose
/// centroids are nearest to it.
///
/// Each list keeps its vectors back to back so a probe is one sequential scan with the block kernel.
/// A removal moves the list's last entry into the hole, so lists stay dense and never grow from
/// deletes. COSINE is served as inner product over normalised copies (centroids included).
public final class IVFFlatIndex: VectorIndex {
    public let metric: Metric
    public let dimension: Int
    public let nlist: Int
    private let kernelMetric: Metric
    /// nlist x dimension.
    private var centroids: [Float]
    private var listVectors: [[Float]]
    private var listSlots: [[UInt32]]
    /// slot -> (list, position in list)
    private var location: [UInt32: (list: Int32, position: Int32)] = [:]
    private let ones: [Float]
    /// The NLIST asked for (nil: chosen from the collection's size at each build).
    private let requestedNlist: Int?
    /// How many vectors k-means saw: the lists serve well up to about twice that.
    public private(set) var trainedOn: Int

    /// k-means needs this many vectors before it has something to learn from; until then an IVF
    /// collection is searched exactly.
    public static let minimumTrainingSize = 1_000

    public var spec: IndexSpec { IndexSpec(kind: .ivf, nlist: isTrained ? nlist : requestedNlist) }
    public var isTrained: Bool { nlist > 0 }
    public var cheapToAdd: Bool { true }
    public var infoFields: [(String, String)] {
        guard isTrained else {
            return [("trained", "no (searched exactly until \(IVFFlatIndex.minimumTrainingSize) vectors)")]
        }
        return [("nlist", String(nlist)), ("nprobe-default", String(IVFFlatIndex.defaultNprobe(nlist: nlist))),
                ("trained-on", String(trainedOn))]
    }

    /// Untrained: built when there is enough data; lists trained on n vectors serve up to 2n, past that
    /// they grow long and are re-trained (geometric growth: about one extra build in total).
    public func wantsRebuild(requested: IndexSpec, live: Int, pending: Int) -> Bool {
        if !isTrained { return live >= IVFFlatIndex.minimumTrainingSize || requested.resolved.kind != .ivf }
        if !spec.satisfies(requested) { return true }
        return requested.nlist == nil && live > 2 * max(trainedOn, 1)
    }

    /// An index that has not been trained: it holds nothing (`isTrained` is false) until a build.
    public static func untrained(metric: Metric, dimension: Int, nlist: Int?) -> IVFFlatIndex {
        IVFFlatIndex(metric: metric, dimension: dimension, centroids: [], requestedNlist: nlist)
    }
    public var liveCount: Int { location.count }
    public var deletedCount: Int { 0 }
    public var memoryBytes: Int {
        centroids.count * 4 + listVectors.reduce(0) { $0 + $1.capacity * 4 } + listSlots.reduce(0) { $0 + $1.capacity * 4 }
            + location.count * 24
    }

    /// The default list count for `n` vectors: about 4 sqrt(n), capped so each list trains on ~39 points.
    public static func defaultNlist(for n: Int) -> Int {
        max(1, min(Int((4 * Double(n).squareRoot()).rounded()), n / 39))
    }

    /// The default probe count: enough lists for recall@10 around 0.95 on clustered data.
    public static func defaultNprobe(nlist: Int) -> Int { min(nlist, max(8, nlist / 32)) }

    /// Trains centroids by k-means on (a sample of) the given vectors, then adds them all.
    /// `threads` splits the assignment steps; `progress(fraction)` returning false cancels (nil result).
    public static func build(metric: Metric, dimension: Int, slots: [UInt32], vectors: UnsafePointer<Float>,
                             nlist requested: Int?, threads: Int, seed: UInt64 = 42,
                             progress: (Double) -> Bool = { _ in true }) -> IVFFlatIndex? {
        let n = slots.count
        let nlist = max(1, min(requested ?? defaultNlist(for: n), max(n, 1)))
        let kernelMetric: Metric = metric == .cosine ? .ip : metric
        // Training data: at most 256 points per list, sampled with a seeded generator.
        var rng = SplitMix64(seed: seed)
        let sampleCount = min(n, 256 * nlist)
        var order = Array(0..<n)
        for i in 0..<sampleCount {
            let j = i + Int(rng.next() % UInt64(n - i))
            order.swapAt(i, j)
        }
        var sample = [Float](repeating: 0, count: sampleCount * dimension)
        for i in 0..<sampleCount {
            for d in 0..<dimension { sample[i * dimension + d] = vectors[order[i] * dimension + d] }
        }
        if metric == .cosine { normalizeRows(&sample, dimension) }
        let centroids = KMeans.train(sample: sample, dimension: dimension, k: nlist, metric: kernelMetric,
                                     sphericalCentroids: metric == .cosine, iterations: 10, threads: threads, seed: seed) { progress(0.8 * $0) }
        guard let centroids else { return nil }
        let index = IVFFlatIndex(metric: metric, dimension: dimension, centroids: centroids, requestedNlist: requested)
        index.trainedOn = n
        for i in 0..<n {
            index.add(slot: slots[i], vector: vectors + i * dimension)
            if i % 10_000 == 9_999, !progress(0.8 + 0.2 * Double(i) / Double(n)) { return nil }
        }
        return index
    }

    init(metric: Metric, dimension: Int, centroids: [Float], requestedNlist: Int?) {
        self.metric = metric
        self.dimension = dimension
        self.requestedNlist = requestedNlist
        trainedOn = 0
        self.centroids = centroids
        nlist = centroids.count / dimension
        kernelMetric = metric == .cosine ? .ip : metric
        listVectors = Array(repeating: [], count: nlist)
        listSlots = Array(repeating: [], count: nlist)
        ones = [Float](repeating: 1, count: 256)
    }

    static func normalizeRows(_ rows: inout [Float], _ dim: Int) {
        rows.withUnsafeMutableBufferPointer { p in
            for r in 0..<(p.count / dim) {
                let row = p.baseAddress! + r * dim
                let inv = DistanceKernels.inverseNorm(row, dim)
                for d in 0..<dim { row[d] *= inv }
            }
        }
    }

    /// Distances from `q` to every centroid, into `out` (nlist floats).
    private func centroidDistances(_ q: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>) {
        centroids.withUnsafeBufferPointer { c in
            ones.withUnsafeBufferPointer { o in
                var start = 0
                while start < nlist {
                    let count = min(256, nlist - start)
                    DistanceKernels.distances(kernelMetric, query: q, base: c.baseAddress! + start * dimension, count: count,
                                              dimension: dimension, invNorms: o.baseAddress!, out: out + start)
                    start += count
                }
            }
        }
    }

    private func nearestList(_ q: UnsafePointer<Float>) -> Int {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: nlist) { d in
            centroidDistances(q, d.baseAddress!)
            var best = 0
            for i in 1..<nlist where d[i] < d[best] { best = i }
            return best
        }
    }

    public func add(slot: UInt32, vector: UnsafePointer<Float>) {
        guard isTrained else { return } // no list to put it in: the collection keeps it pending
        remove(slot: slot)
        withComparable(vector, dimension: dimension) { v in
            let list = nearestList(v)
            location[slot] = (Int32(list), Int32(listSlots[list].count))
            listSlots[list].append(slot)
            listVectors[list].append(contentsOf: UnsafeBufferPointer(start: v, count: dimension))
        }
    }

    public func remove(slot: UInt32) {
        guard let (list32, pos32) = location.removeValue(forKey: slot) else { return }
        let list = Int(list32), pos = Int(pos32)
        let last = listSlots[list].count - 1
        if pos != last {
            let moved = listSlots[list][last]
            listSlots[list][pos] = moved
            for d in 0..<dimension { listVectors[list][pos * dimension + d] = listVectors[list][last * dimension + d] }
            location[moved] = (list32, pos32)
        }
        listSlots[list].removeLast()
        listVectors[list].removeLast(dimension)
    }

    public func contains(slot: UInt32) -> Bool { location[slot] != nil }

    public var indexedSlots: [UInt32] { Array(location.keys) }

    public func matches(slot: UInt32, vector: UnsafePointer<Float>) -> Bool {
        guard let (list, pos) = location[slot] else { return false }
        return listVectors[Int(list)].withUnsafeBufferPointer {
            sameVector($0.baseAddress! + Int(pos) * dimension, vector, dimension: dimension)
        }
    }

    // Payload: nlist u32, centroids (nlist x dim f32), then per list: count u32, slots, vectors.
    func serialize(into w: inout ByteWriter) {
        w.u32(UInt32(nlist))
        w.floats(centroids)
        for l in 0..<nlist {
            w.u32(UInt32(listSlots[l].count))
            w.u32s(listSlots[l])
            w.floats(listVectors[l])
        }
    }

    static func deserialize(_ r: inout ByteReader, metric: Metric, dimension: Int) throws -> IVFFlatIndex {
        let nlist = Int(try r.u32())
        guard nlist >= 1, nlist * dimension * 4 <= r.remaining else { throw SnapshotError("IVF snapshot: bad list count \(nlist)") }
        let index = IVFFlatIndex(metric: metric, dimension: dimension, centroids: try r.floats(nlist * dimension), requestedNlist: nil)
        for l in 0..<nlist {
            let n = Int(try r.u32())
            guard n * (4 + dimension * 4) <= r.remaining else { throw SnapshotError("IVF snapshot: list \(l) truncated") }
            let slots = try r.u32s(n)
            index.listSlots[l] = slots
            index.listVectors[l] = try r.floats(n * dimension)
            for (pos, slot) in slots.enumerated() {
                // A slot in two lists would leave a copy behind that `remove` cannot find.
                guard index.location.updateValue((Int32(l), Int32(pos)), forKey: slot) == nil else {
                    throw SnapshotError("IVF snapshot names slot \(slot) twice")
                }
            }
        }
        index.trainedOn = index.location.count
        return index
    }

    /// Below this filter selectivity the list scan tests the filter before computing a distance (FAISS's
    /// IDSelector does the same); above it the block kernel over whole lists is cheaper.
    public static let testFirstSelectivity = 0.3

    public func search(_ query: UnsafePointer<Float>, _ params: SearchParameters) -> [Neighbor] {
        guard isTrained else { return [] }
        let nprobe = min(nlist, max(1, params.nprobe ?? IVFFlatIndex.defaultNprobe(nlist: nlist)))
        return withComparable(query, dimension: dimension) { q in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: nlist) { cd in
                centroidDistances(q, cd.baseAddress!)
                // The nprobe nearest centroids: a bounded heap over nlist distances. Under a filter, when they
                // hold fewer than `k` allowed vectors, every list is ordered and the lists beyond them are
                // probed until `k` are found (ordering all lists up front cost a sort of nlist per query).
                let allows = params.allows
                var nearest = TopK(k: nprobe)
                for i in 0..<nlist { nearest.push(UInt32(i), cd[i]) }
                var top = TopK(k: params.k)
                let testFirst = allows != nil && (params.selectivity ?? 1) < IVFFlatIndex.testFirstSelectivity
                withUnsafeTemporaryAllocation(of: Float.self, capacity: 256) { out in
                    ones.withUnsafeBufferPointer { o in
                        func probe(_ list: Int) {
                            listVectors[list].withUnsafeBufferPointer { vs in
                                listSlots[list].withUnsafeBufferPointer { ss in
                                    if testFirst, let allows {
                                        // A selective filter: test each vector first (a bit when the filter's
                                        // matches are cached) and compute only the matching ones' distances.
                                        // Invariant: list vector i is at vs + i * dimension, i < ss.count.
                                        var threshold = top.threshold
                                        for i in 0..<ss.count where allows(ss[i]) {
                                            let d = DistanceKernels.distance(kernelMetric, q, vs.baseAddress! + i * dimension,
                                                                             dimension, invNormA: 1, invNormB: 1)
                                            if d <= threshold {
                                                top.push(ss[i], d)
                                                threshold = top.threshold
                                            }
                                        }
                                        return
                                    }
                                    var start = 0
                                    while start < ss.count {
                                        let count = min(256, ss.count - start)
                                        DistanceKernels.distances(kernelMetric, query: q, base: vs.baseAddress! + start * dimension,
                                                                  count: count, dimension: dimension, invNorms: o.baseAddress!,
                                                                  out: out.baseAddress!)
                                        var threshold = top.threshold
                                        for i in 0..<count where out[i] <= threshold && allows?(ss[start + i]) != false {
                                            top.push(ss[start + i], out[i])
                                            threshold = top.threshold
                                        }
                                        start += count
                                    }
                                }
                            }
                        }
                        for p in nearest.sorted() { probe(Int(p.slot)) }
                        guard allows != nil, top.count < params.k, nprobe < nlist else { return }
                        var all = TopK(k: nlist)
                        for i in 0..<nlist { all.push(UInt32(i), cd[i]) }
                        // Same order as `nearest` (distance, then list number): its first nprobe are done.
                        for p in all.sorted().dropFirst(nprobe) {
                            if top.count >= params.k { break }
                            probe(Int(p.slot))
                        }
                    }
                }
                let found = top.sorted()
                guard metric == .cosine else { return found }
                return found.map { Neighbor(slot: $0.slot, distance: 1 + $0.distance) }
            }
        }
    }
}

/// Lloyd's k-means with sampled initial centroids (distinct random points) and a bounded number of
/// iterations; the assignment step, where the time goes, is split across threads.
enum KMeans {
    /// `sphericalCentroids` keeps centroids at unit length (COSINE data, compared by inner product).
    static func train(sample: [Float], dimension: Int, k: Int, metric: Metric, sphericalCentroids: Bool = false,
                      iterations: Int, threads: Int, seed: UInt64, progress: (Double) -> Bool) -> [Float]? {
        let n = sample.count / dimension
        precondition(n >= 1 && k >= 1)
        var rng = SplitMix64(seed: seed ^ 0x5EED)
        var picks = Array(0..<n)
        for i in 0..<min(k, n) { picks.swapAt(i, i + Int(rng.next() % UInt64(n - i))) }
        var centroids = [Float](repeating: 0, count: k * dimension)
        for c in 0..<k {
            let src = picks[c % n]
            for d in 0..<dimension { centroids[c * dimension + d] = sample[src * dimension + d] }
        }
        var assignment = [Int32](repeating: 0, count: n)
        let ones = [Float](repeating: 1, count: 256)
        for iteration in 0..<iterations {
            // Assign each point to its nearest centroid.
            let workers = max(1, threads)
            let per = (n + workers - 1) / workers
            sample.withUnsafeBufferPointer { s in
                centroids.withUnsafeBufferPointer { c in
                    assignment.withUnsafeMutableBufferPointer { a in
                        let aBase = a.baseAddress!
                        DispatchQueue.concurrentPerform(iterations: workers) { w in
                            let dist = UnsafeMutablePointer<Float>.allocate(capacity: k)
                            defer { dist.deallocate() }
                            for i in (w * per)..<min(n, (w + 1) * per) {
                                var start = 0
                                while start < k {
                                    let count = min(256, k - start)
                                    DistanceKernels.distances(metric, query: s.baseAddress! + i * dimension,
                                                              base: c.baseAddress! + start * dimension, count: count,
                                                              dimension: dimension, invNorms: ones, out: dist + start)
                                    start += count
                                }
                                var best = 0
                                for j in 1..<k where dist[j] < dist[best] { best = j }
                                aBase[i] = Int32(best)
                            }
                        }
                    }
                }
            }
            // Move each centroid to the mean of its points; an empty cell takes a random point.
            var sums = [Double](repeating: 0, count: k * dimension)
            var counts = [Int](repeating: 0, count: k)
            for i in 0..<n {
                let c = Int(assignment[i])
                counts[c] += 1
                for d in 0..<dimension { sums[c * dimension + d] += Double(sample[i * dimension + d]) }
            }
            for c in 0..<k {
                if counts[c] == 0 {
                    let src = Int(rng.next() % UInt64(n))
                    for d in 0..<dimension { centroids[c * dimension + d] = sample[src * dimension + d] }
                } else {
                    for d in 0..<dimension { centroids[c * dimension + d] = Float(sums[c * dimension + d] / Double(counts[c])) }
                }
            }
            if sphericalCentroids { IVFFlatIndex.normalizeRows(&centroids, dimension) }
            if !progress(Double(iteration + 1) / Double(iterations)) { return nil }
        }
        return centroids
    }
}
