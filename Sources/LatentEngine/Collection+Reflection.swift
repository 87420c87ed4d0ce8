import Foundation
import LatentIndex
import LatentStorage
import LatentVectors

/// What Redis' vector-set reflection commands show (VLINKS, VRANDMEMBER, VRANGE, VEMB RAW, VINFO's
/// Redis fields), and REDUCE's projection of inputs.
extension Collection {
    /// An input vector as the collection stores it: projected when the collection was created with
    /// REDUCE and the vector has the projection's input dimension; otherwise unchanged (and validated
    /// against the collection's dimension by the write or search that uses it).
    public func projectedInput(_ v: [Float]) throws -> [Float] {
        guard let projection, v.count != dimension else { return v }
        guard v.count == projection.inputDimension else {
            throw EngineError.dimensionMismatch(collection: name, expected: projection.inputDimension, got: v.count)
        }
        return projection.apply(v, matrix: projectionMatrix, outputDimension: dimension)
    }

    /// Adds what the index has not taken yet, on the caller's thread, so the graph VLINKS and VINFO
    /// describe holds every element written before the call. Does nothing while a full build runs
    /// (the build takes them) or for indexes that answer from the buffer.
    public func settleIndex() {
        helpMutex.lock()
        defer { helpMutex.unlock() }
        while true {
            let more: Bool = state.withWriteLock {
                guard !dropped, build == nil, index.isTrained, !index.scansCollectionBuffer else { return false }
                var n = 0
                while let slot = pending.first, n < 256 {
                    index.add(slot: slot, vector: buffer.vector(Int(slot)))
                    pending.removeFirst()
                    n += 1
                }
                if n > 0 { snapshotDirty = true }
                return !pending.isEmpty
            }
            if !more { return }
        }
    }

    /// VLINKS: the element's neighbours per graph layer, highest first, with their similarity scores.
    /// nil when the element does not exist; `[]` when the collection's index has no graph (FLAT, IVF);
    /// one empty layer when the element is not in the graph yet (a build is running).
    public func links(of id: ElementID) -> [[(id: ElementID, score: Double)]]? {
        state.withReadLock {
            guard let slot = slotOf[id] else { return nil }
            guard index.graphMaxLevel != nil else { return [] }
            guard let layers = index.links(ofSlot: slot) else { return [[]] }
            let v = buffer.vector(Int(slot))
            return layers.map { layer in
                layer.compactMap { n -> (ElementID, Double)? in
                    guard buffer.isLive(Int(n)), Int(n) < idOf.count, let other = idOf[Int(n)] else { return nil }
                    let d = DistanceKernels.distance(metric, v, buffer.vector(Int(n)), dimension,
                                                     invNormA: buffer.inverseNorm(Int(slot)), invNormB: buffer.inverseNorm(Int(n)))
                    return (other, metric.score(fromDistance: d))
                }
            }
        }
    }

    /// VRANDMEMBER: `count` distinct elements (fewer when the collection is smaller), or with
    /// `allowRepeats` exactly `count` draws that may repeat.
    public func randomMembers(_ count: Int, allowRepeats: Bool) -> [ElementID] {
        state.withReadLock {
            let live = slotOf.count
            guard live > 0, count > 0 else { return [] }
            var rng = SystemRandomNumberGenerator()
            func draw() -> ElementID? {
                // Slots are dense (freed ones are reused first), so a few tries find a live one.
                for _ in 0..<64 {
                    let s = Int.random(in: 0..<idOf.count, using: &rng)
                    if let id = idOf[s] { return id }
                }
                return slotOf.keys.randomElement(using: &rng)
            }
            if allowRepeats { return (0..<count).compactMap { _ in draw() } }
            if count >= live { return Array(slotOf.keys).shuffled(using: &rng) }
            if count <= live / 5 {
                var picked = Set<ElementID>()
                var out: [ElementID] = []
                while out.count < count, let id = draw() {
                    if picked.insert(id).inserted { out.append(id) }
                }
                return out
            }
            return Array(Array(slotOf.keys).shuffled(using: &rng).prefix(count))
        }
    }

    /// VRANGE: element ids in byte order between `start` and `end`, at most `limit` (nil: all).
    /// Read from the store's id map, which RocksDB keeps sorted.
    public func range(from start: [UInt8]?, startInclusive: Bool, to end: [UInt8]?, endInclusive: Bool,
                      limit: Int?) throws -> [ElementID] {
        var out: [ElementID] = []
        if limit == 0 { return out }
        try storageCall {
            try store.scanIds(collection: collectionId, from: start) { id in
                if let start, !startInclusive, id == start { return true }
                if let end {
                    if endInclusive ? end.lexicographicallyPrecedes(id) : !id.lexicographicallyPrecedes(end) { return false }
                }
                out.append(ElementID(bytes: id))
                return limit.map { out.count < $0 } ?? true
            }
        }
        return out
    }

    /// The figures VINFO reports under Redis' names.
    public struct RedisInfo: Sendable {
        public var maxLevel: Int
        /// Slots ever used: the number of nodes the collection has held at once at most (Redis' last node id).
        public var maxNodeUID: Int
        public var attributesCount: Int
        public var m: Int
    }

    public func redisInfo() throws -> RedisInfo {
        let (level, slots, spec) = state.withReadLock { (index.graphMaxLevel ?? 0, idOf.count, indexSpec) }
        let attributes = try storageCall { try store.countAttributes(collection: collectionId) }
        return RedisInfo(maxLevel: level, maxNodeUID: slots, attributesCount: attributes,
                         m: spec.kind == .hnsw ? IndexSpec.hnswParameters(m: spec.m, efConstruction: nil).m : 0)
    }
}
