import Foundation
import LatentVectors

extension HNSWIndex {
    /// Live nodes that no other node links to at layer 0: reachable only through upper layers, if at
    /// all. A diagnostic for graph quality (the benchmark prints it).
    public var unreferencedNodes: Int {
        var referenced = [Bool](repeating: false, count: count)
        for node in 0..<count {
            let l = links0(UInt32(node))
            for j in 0..<Int(l[0]) { referenced[Int(l[1 + j])] = true }
        }
        return (0..<count).filter { !referenced[$0] && !deleted[$0] && UInt32($0) != entryPoint }.count
    }

    public var indexedSlots: [UInt32] { Array(nodeOfSlot.keys) }

    public func matches(slot: UInt32, vector: UnsafePointer<Float>) -> Bool {
        guard let node = nodeOfSlot[slot] else { return false }
        return sameVector(self.vector(node), vector, dimension: dimension)
    }

    // Payload: m, efConstruction, count u32; maxLevel i32; entry point u32; generator state u64;
    // slots (count u32); levels (count u8); deleted flags (count u8); the layer-0 block (count x stride
    // bytes: vector then links); then each upper-layer node's links (level x (m + 1) u32).
    func serialize(into w: inout ByteWriter) {
        w.u32(UInt32(m))
        w.u32(UInt32(efConstruction))
        w.u32(UInt32(count))
        w.i32(Int32(maxLevel))
        w.u32(entryPoint)
        w.u64(rng.state)
        w.u32s(slots)
        w.bytes(levels)
        w.bytes(deleted.map { $0 ? 1 : 0 })
        w.raw(level0, count * stride)
        for node in 0..<count where levels[node] > 0 { w.raw(upperLinks[node]!, Int(levels[node]) * (m + 1) * 4) }
    }

    /// Bytes per node in the layer-0 block: the vector, then `2m + 1` link words, padded to 64.
    public static func levelZeroStride(dimension: Int, m: Int) -> Int { (dimension * 4 + (2 * m + 1) * 4 + 63) / 64 * 64 }

    /// Decodes a payload written by `serialize`, checking its whole structure before any search can
    /// use it: sizes against the bytes present before allocating, every link in bounds and within its
    /// list's capacity, levels at most 31 and no live node above the top level, the entry point on the
    /// top level, a live node's upper links only to nodes that have that level, no slot twice. A
    /// snapshot that passed the checksum but was written by a buggy build (or crafted) is refused and
    /// the collection rebuilds; it never sends a search out of bounds.
    static func deserialize(_ r: inout ByteReader, metric: Metric, dimension: Int) throws -> HNSWIndex {
        let m = Int(try r.u32()), efConstruction = Int(try r.u32()), count = Int(try r.u32())
        let maxLevel = Int(try r.i32())
        let entry = try r.u32()
        let state = try r.u64()
        guard (2...512).contains(m), (1...100_000).contains(efConstruction), maxLevel < 32,
              count * (6 + levelZeroStride(dimension: dimension, m: m)) <= r.remaining,
              count == 0 ? maxLevel == -1 : (Int(entry) < count && maxLevel >= 0) else {
            throw SnapshotError("HNSW snapshot header is inconsistent")
        }
        let index = HNSWIndex(metric: metric, dimension: dimension, m: m, efConstruction: efConstruction, capacity: max(count, 16))
        index.rng.state = state
        index.slots = try r.u32s(count)
        index.levels = try r.bytes(count)
        guard index.levels.allSatisfy({ $0 < 32 }) else { throw SnapshotError("HNSW snapshot has a level above 31") }
        index.deleted = try r.bytes(count).map { $0 != 0 }
        index.inRepairBatch = [Bool](repeating: false, count: count)
        guard count * index.stride <= r.remaining else { throw SnapshotError("HNSW snapshot truncated") }
        try r.copy(count * index.stride, to: index.level0)
        index.count = count
        index.upperLinks = try index.levels.map { level in
            let p = HNSWIndex.allocateUpper(level: Int(level), m: m)
            if let p { try r.copy(Int(level) * (m + 1) * 4, to: p) }
            return p
        }
        guard count == 0 || Int(index.levels[Int(entry)]) == maxLevel else {
            throw SnapshotError("HNSW snapshot's entry point is not on the top level")
        }
        for node in 0..<count {
            let l0 = index.links0(UInt32(node))
            let live = !index.deleted[node]
            guard Int(l0[0]) <= index.m0, (0..<Int(l0[0])).allSatisfy({ Int(l0[1 + $0]) < count }),
                  !live || Int(index.levels[node]) <= maxLevel else { throw SnapshotError("HNSW snapshot has a bad link list") }
            for level in 0..<Int(index.levels[node]) {
                // Invariant: levels[node] > 0 here, so allocateUpper returned lists for every level.
                let base = level * (m + 1), links = index.upperLinks[node]!
                guard Int(links[base]) <= m, (0..<Int(links[base])).allSatisfy({ i in
                    let target = Int(links[base + 1 + i])
                    // A tombstone's stale links may name a reused node with fewer levels; a live node's may not.
                    return target < count && (!live || Int(index.levels[target]) > level)
                }) else {
                    throw SnapshotError("HNSW snapshot has a bad upper link list")
                }
            }
            if live {
                guard index.nodeOfSlot.updateValue(UInt32(node), forKey: index.slots[node]) == nil else {
                    throw SnapshotError("HNSW snapshot names slot \(index.slots[node]) twice")
                }
            } else {
                // Tombstones and free nodes alike: the first repair pass unlinks whatever still names them.
                index.deletedCount += 1
                index.tombstones.append(UInt32(node))
            }
        }
        index.entryPoint = entry
        index.maxLevel = maxLevel
        return index
    }
}
