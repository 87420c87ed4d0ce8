import Foundation
import LatentIndex
import LatentVectors

/// Copies of some slots' vectors, back to back in one aligned block, so that scanning them reads memory
/// sequentially instead of jumping across the collection's buffer (a scattered vector costs a cache miss,
/// ~150 ns on this VM; a contiguous one streams at the kernel's speed).
///
/// The filter-match cache keeps one per selective filter: the exact scan of a filter's matches then runs
/// over this block. `stamp` is the collection buffer's `writeStamp` when the copy was taken; any vector
/// write or delete moves the stamp, and a copy with another stamp is never scanned (it is taken again).
/// Immutable after init; read under the collection's read lock.
final class GatheredVectors: @unchecked Sendable {
    /// Row i holds the vector of `slots[i]`: the live slots among those asked for, in their order.
    let slots: [UInt32]
    let stamp: UInt64
    let dimension: Int
    /// `slots.count * dimension` floats, 64-byte aligned; `invNorms[i]` is row i's reciprocal norm.
    private let floats: UnsafeMutablePointer<Float>
    private let invNorms: UnsafeMutablePointer<Float>

    init(slots wanted: [UInt32], from buffer: VectorBuffer) {
        let slots = wanted.filter { buffer.isLive(Int($0)) }
        self.slots = slots
        stamp = buffer.writeStamp
        dimension = buffer.dimension
        let rows = max(1, slots.count)
        floats = UnsafeMutableRawPointer.allocate(byteCount: rows * dimension * 4, alignment: VectorBuffer.alignment)
            .bindMemory(to: Float.self, capacity: rows * dimension)
        invNorms = .allocate(capacity: rows)
        // Invariant: every slot is live in `buffer` (filtered above), so `buffer.vector(slot)` points at
        // `dimension` initialised floats; row i is written once, at `floats + i * dimension`.
        for (i, slot) in slots.enumerated() {
            (floats + i * dimension).initialize(from: buffer.vector(Int(slot)), count: dimension)
            invNorms[i] = buffer.inverseNorm(Int(slot))
        }
    }

    deinit {
        floats.deallocate()
        invNorms.deallocate()
    }

    /// Calls `body` with the rows (`slots.count * dimension` floats); the pointer is valid only inside it.
    func withRows<T>(_ body: (UnsafePointer<Float>) -> T) -> T {
        withExtendedLifetime(self) { body(UnsafePointer(floats)) }
    }

    static func bytes(rows: Int, dimension: Int) -> Int { rows * (dimension * 4 + 8) }

    /// The exact top-k of these rows for `query` (`dimension` floats), leaving out slots `excludes` names.
    func scan(_ query: UnsafePointer<Float>, metric: Metric, k: Int, excludes: SlotPredicate?,
              ranksBefore: @escaping (UInt32, UInt32) -> Bool) -> [Neighbor] {
        FlatIndex.scan(query, rows: UnsafePointer(floats), invNorms: UnsafePointer(invNorms), slots: slots,
                       dimension: dimension, metric: metric, k: k, excludes: excludes, ranksBefore: ranksBefore)
    }
}
