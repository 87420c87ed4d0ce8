/// A collection's vectors in one contiguous, 64-byte aligned block of float32, indexed by slot
/// (the internal id), so an exact scan walks memory sequentially.
///
/// Per vector it holds `4 * dimension` bytes of floats, 4 bytes of reciprocal norm (COSINE needs it on
/// every comparison) and 1 byte of liveness. Freed slots are reused by the owner; the block grows by
/// doubling. Not synchronised: the owning collection guards it with its read-write lock.
public final class VectorBuffer {
    public let dimension: Int
    public private(set) var capacity: Int
    /// One past the highest slot ever used; scans stop here.
    public private(set) var slotCount: Int = 0
    public private(set) var liveCount: Int = 0
    /// Counts every `set` and `clear`: a copy of some vectors taken at one value is still exact while the
    /// buffer shows the same value (the filter-match cache's gathered vectors check it).
    public private(set) var writeStamp: UInt64 = 0
    private var floats: UnsafeMutablePointer<Float>
    private var invNorms: UnsafeMutablePointer<Float>
    private var live: UnsafeMutablePointer<UInt8>

    public static let alignment = 64

    public init(dimension: Int, initialCapacity: Int = 1024) {
        precondition(dimension > 0)
        self.dimension = dimension
        capacity = max(initialCapacity, 16)
        (floats, invNorms, live) = VectorBuffer.allocate(dimension: dimension, capacity: capacity)
    }

    deinit {
        floats.deallocate()
        invNorms.deallocate()
        live.deallocate()
    }

    private static func allocate(dimension: Int, capacity: Int)
        -> (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<UInt8>) {
        let f = UnsafeMutableRawPointer.allocate(byteCount: capacity * dimension * 4, alignment: alignment)
            .bindMemory(to: Float.self, capacity: capacity * dimension)
        let n = UnsafeMutablePointer<Float>.allocate(capacity: capacity)
        let l = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity)
        l.initialize(repeating: 0, count: capacity)
        return (f, n, l)
    }

    /// Bytes held for vectors, norms and liveness (the allocated capacity, not just the used part).
    public var memoryBytes: Int { capacity * (dimension * 4 + 4 + 1) }

    /// Grows the block to hold `needed` slots at once (e.g. before loading a collection of known size).
    public func reserve(slots needed: Int) {
        guard needed > capacity else { return }
        var newCapacity = capacity
        while newCapacity < needed { newCapacity *= 2 }
        let (f, n, l) = VectorBuffer.allocate(dimension: dimension, capacity: newCapacity)
        f.update(from: floats, count: slotCount * dimension)
        n.update(from: invNorms, count: slotCount)
        l.update(from: live, count: slotCount)
        floats.deallocate()
        invNorms.deallocate()
        live.deallocate()
        (floats, invNorms, live, capacity) = (f, n, l, newCapacity)
    }

    /// Stores `vector` (exactly `dimension` floats) at `slot` and marks it live.
    public func set(slot: Int, _ vector: UnsafePointer<Float>) {
        reserve(slots: slot + 1)
        if slot >= slotCount {
            // Slots skipped over stay dead until set.
            (live + slotCount).update(repeating: 0, count: slot + 1 - slotCount)
            slotCount = slot + 1
        }
        writeStamp &+= 1
        let dst = floats + slot * dimension
        dst.update(from: vector, count: dimension)
        invNorms[slot] = DistanceKernels.inverseNorm(dst, dimension)
        if live[slot] == 0 { liveCount += 1 }
        live[slot] = 1
    }

    public func clear(slot: Int) {
        guard slot < slotCount, live[slot] != 0 else { return }
        writeStamp &+= 1
        live[slot] = 0
        liveCount -= 1
    }

    @inlinable @inline(__always)
    public func isLive(_ slot: Int) -> Bool { slot < slotCount && liveFlags[slot] != 0 }

    @inlinable @inline(__always)
    public func vector(_ slot: Int) -> UnsafePointer<Float> { UnsafePointer(base + slot * dimension) }

    @inlinable @inline(__always)
    public func inverseNorm(_ slot: Int) -> Float { norms[slot] }

    /// Reciprocal norms from `slot` on (contiguous, one per slot), for the block kernels.
    @inlinable @inline(__always)
    public func inverseNorms(from slot: Int) -> UnsafePointer<Float> { UnsafePointer(norms + slot) }

    public func copyVector(_ slot: Int) -> [Float] {
        Array(UnsafeBufferPointer(start: vector(slot), count: dimension))
    }

    // Read-only views for the inlinable accessors above.
    @usableFromInline var base: UnsafeMutablePointer<Float> { floats }
    @usableFromInline var norms: UnsafeMutablePointer<Float> { invNorms }
    @usableFromInline var liveFlags: UnsafeMutablePointer<UInt8> { live }
}
