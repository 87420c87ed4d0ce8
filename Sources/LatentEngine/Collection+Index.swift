import Collections
import Dispatch
import Foundation
import LatentIndex
import LatentVectors
import Logging

/// Where index work runs: never on NIO event loops, never on the request threads.
///
/// Full builds go through one serial utility queue (one build at a time: bounded concurrency), and each
/// build splits itself over `threads` threads. Draining the pending tail into an existing index runs
/// on a concurrent utility queue in short steps.
/// Guarding: every field is immutable after init; the queues and the group are thread-safe themselves.
public final class BackgroundIndexer: @unchecked Sendable {
    let buildQueue = DispatchQueue(label: "latentdb.index-build", qos: .utility)
    let drainQueue = DispatchQueue(label: "latentdb.index-drain", qos: .utility, attributes: .concurrent)
    public let threads: Int
    let logger: Logger
    private let group = DispatchGroup()

    public init(threads: Int = ProcessInfo.processInfo.activeProcessorCount, logger: Logger = Logger(label: "latentdb.index")) {
        self.threads = max(1, threads)
        self.logger = logger
    }

    func build(_ work: @escaping @Sendable () -> Void) { buildQueue.async(group: group, execute: work) }
    func drain(_ work: @escaping @Sendable () -> Void) { drainQueue.async(group: group, execute: work) }

    /// Blocks until every queued build and drain has finished (tests, shutdown).
    public func waitUntilIdle() { group.wait() }
}

/// A full build in progress: what changed since its snapshot, how far it is, whether it was cancelled.
/// Guarding: `changed` is guarded by the owning collection's `state` write lock; `_progress` and
/// `_cancelled` by `lock`; `spec` is immutable.
final class IndexBuild: @unchecked Sendable {
    let spec: IndexSpec
    /// Slots written or deleted after the build took its snapshot; re-applied at the swap.
    var changed = Set<UInt32>()
    private let lock = NSLock()
    private var _progress = 0.0
    private var _cancelled = false

    init(spec: IndexSpec) { self.spec = spec }

    var progress: Double {
        get { lock.lock(); defer { lock.unlock() }; return _progress }
        set { lock.lock(); _progress = newValue; lock.unlock() }
    }

    var isCancelled: Bool { lock.lock(); defer { lock.unlock() }; return _cancelled }
    func cancel() { lock.lock(); _cancelled = true; lock.unlock() }
}

extension Collection {
    /// The longest a background step holds the write lock.
    static let drainSlice: UInt64 = 2_000_000 // ns

    /// Called under the write lock for every changed slot: keeps the index, the pending tail and a
    /// running build's change set consistent with the buffer.
    func noteChanged(slot: UInt32, live: Bool) {
        build?.changed.insert(slot)
        if index.scansCollectionBuffer { return } // the buffer is the index
        snapshotDirty = true
        if live, index.isTrained, index.cheapToAdd {
            index.add(slot: slot, vector: buffer.vector(Int(slot)))
            return
        }
        index.remove(slot: slot)
        if live { pending.append(slot) } else { pending.remove(slot) }
    }

    /// Starts whatever background work the collection needs: a full build when the serving index says
    /// it should be replaced (`wantsRebuild`: a changed request, a long tail, decay, training), otherwise
    /// a drain of the pending tail into it.
    func scheduleIndexMaintenance() {
        var startBuild = false
        var startDrain = false
        state.withWriteLock {
            guard !dropped, build == nil else { return }
            startBuild = index.wantsRebuild(requested: indexSpec, live: buffer.liveCount, pending: pending.count)
            if startBuild {
                build = IndexBuild(spec: indexSpec)
            } else if (!pending.isEmpty || index.hasRepairWork) && !drainScheduled && index.isTrained
                        && !index.scansCollectionBuffer {
                drainScheduled = true
                startDrain = true
            }
        }
        if startBuild { runBuild() }
        if startDrain { indexer.drain { [self] in drainPending() } }
    }

    /// The requested spec with defaults filled in, to compare with what an index was built with.
    var indexSpecResolved: IndexSpec { indexSpec.resolved }

    /// Adds pending vectors to the index and repairs its deletes in slices of at most `drainSlice`, then
    /// pauses as long as the slice took: half of the time the lock is free, so writes and searches never
    /// queue behind a long run of slices (a pthread rwlock does not hand the lock to waiters in order).
    private func drainPending() {
        while true {
            let sliceStart = DispatchTime.now().uptimeNanoseconds
            let more: Bool = state.withWriteLock {
                guard !dropped, build == nil else {
                    drainScheduled = false
                    return false
                }
                let deadline = DispatchTime.now().uptimeNanoseconds + Collection.drainSlice
                while let slot = pending.first, DispatchTime.now().uptimeNanoseconds < deadline {
                    index.add(slot: slot, vector: buffer.vector(Int(slot)))
                    pending.removeFirst()
                    snapshotDirty = true
                }
                // Deletes and replacements are repaired in the rest of the slice (a pass starts early
                // only when tombstones pile up, at once when the tail is empty).
                var repairLeft = index.hasRepairWork
                if repairLeft && DispatchTime.now().uptimeNanoseconds < deadline {
                    repairLeft = index.repair(until: deadline, idle: pending.isEmpty)
                    snapshotDirty = true
                }
                let more = !pending.isEmpty || repairLeft
                if !more { drainScheduled = false }
                return more
            }
            if !more { return }
            let took = DispatchTime.now().uptimeNanoseconds - sliceStart
            usleep(useconds_t(min(took, Collection.drainSlice) / 1000))
        }
    }

    /// Pending tail length above which writers help: the bound on the tail under a steady write load.
    static let helpAbovePending = 1_024
    /// Tombstones above which writers run repair work themselves.
    static let helpAboveTombstones = 2_048
    /// Index work a writer does per write when the index is behind (inserts, or repair time).
    static let helpInsertsPerWrite = 3
    static let helpRepairNanos: UInt64 = 1_000_000

    /// Back-pressure for a write load the background drain cannot match (an index whose inserts are
    /// dear: HNSW). A writer that finds the pending tail above `helpAbovePending` inserts up to
    /// `helpInsertsPerWrite` pending vectors itself before it replies, and one that finds more than
    /// `helpAboveTombstones` tombstones runs a slice of repair, so sustained writes proceed at the
    /// index's own pace instead of outrunning it into a full rebuild, and the tail (searched exactly)
    /// stays bounded. Runs after the writer mutex is released, taking the write lock per insert. One
    /// writer helps at a time (`helpMutex`; the others wait for it, which is the back-pressure): a queue
    /// of helpers on the writer-preferring state lock would keep searches out for as long as it lasts.
    /// A batched upsert of `writes` elements helps as much as that many single writes.
    func helpIndexKeepUp(writes: Int = 1) {
        let behind = state.withReadLock {
            !dropped && build == nil && ((pending.count > Collection.helpAbovePending && !index.cheapToAdd)
                || index.deletedCount > Collection.helpAboveTombstones)
        }
        guard behind else { return }
        helpMutex.lock()
        defer { helpMutex.unlock() }
        for _ in 0..<(Collection.helpInsertsPerWrite * writes) {
            let inserted: Bool = state.withWriteLock {
                guard !dropped, build == nil, index.isTrained, !index.cheapToAdd, !index.scansCollectionBuffer,
                      pending.count > Collection.helpAbovePending, let slot = pending.first else { return false }
                index.add(slot: slot, vector: buffer.vector(Int(slot)))
                pending.removeFirst()
                snapshotDirty = true
                return true
            }
            if !inserted { break }
        }
        state.withWriteLock {
            guard !dropped, build == nil, index.deletedCount > Collection.helpAboveTombstones else { return }
            _ = index.repair(until: DispatchTime.now().uptimeNanoseconds + Collection.helpRepairNanos * UInt64(writes), idle: true)
            snapshotDirty = true
        }
    }

    /// Requests a rebuild with `spec` (VREBUILD). The old index serves until the new one is swapped in.
    public func rebuild(with spec: IndexSpec) {
        state.withWriteLock {
            build?.cancel()
            indexSpec = spec
            build = IndexBuild(spec: spec)
        }
        runBuild()
    }

    /// Builds a new index from a snapshot of the live vectors on the build queue, then swaps it in. An
    /// index that is the collection's buffer (FLAT) needs no data and is swapped in at once.
    private func runBuild() {
        guard let task = state.withReadLock({ build }) else { return }
        let fresh = IndexFactory.empty(task.spec, metric: metric, dimension: dimension, buffer: buffer)
        if fresh.scansCollectionBuffer {
            state.withWriteLock {
                guard build === task else { return }
                index = fresh
                pending = []
                build = nil
                completedBuilds += 1
            }
            return
        }
        indexer.build { [self] in
            let started = DispatchTime.now().uptimeNanoseconds
            guard !task.isCancelled else { return finishCancelled(task) }
            let (slots, vectors) = snapshotLiveVectors()
            let built: VectorIndex? = vectors.withUnsafeBufferPointer { v -> VectorIndex? in
                IndexFactory.build(task.spec, metric: metric, dimension: dimension, slots: slots,
                                   vectors: v.baseAddress ?? UnsafePointer(bitPattern: 16)!, threads: indexer.threads) { fraction in
                    task.progress = fraction
                    return !task.isCancelled
                }
            }
            guard let built, !task.isCancelled else { return finishCancelled(task) }
            if !built.cheapToAdd, !catchUp(built, task) { return finishCancelled(task) }
            // Read under the lock: once swapped in, the index is mutated by writers (IVF adds in the write path).
            var indexedAtSwap = 0
            state.withWriteLock {
                guard build === task else { return }
                // Re-apply what changed while the build ran; anything the new index cannot take at once
                // stays pending (searched exactly) until the drain adds it.
                var newPending = OrderedSet<UInt32>()
                for slot in task.changed.sorted() {
                    if buffer.isLive(Int(slot)) && built.matches(slot: slot, vector: buffer.vector(Int(slot))) { continue }
                    built.remove(slot: slot)
                    guard buffer.isLive(Int(slot)) else { continue }
                    if built.cheapToAdd { built.add(slot: slot, vector: buffer.vector(Int(slot))) } else { newPending.append(slot) }
                }
                index = built
                pending = newPending
                build = nil
                snapshotDirty = true
                indexedAtSwap = built.liveCount
                completedBuilds += 1
            }
            saveIndexSnapshot()
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
            indexer.logger.info("index built", metadata: ["collection": "\(name)", "index": "\(task.spec.kind.rawValue)",
                                                          "vectors": "\(indexedAtSwap)", "seconds": "\(seconds)"])
            scheduleIndexMaintenance()
        }
    }

    /// Inserts what was written during the build into the new index before it serves, in rounds, while
    /// the backlog is large: a bulk load that outpaces the build then costs one insert per vector, not a
    /// second full build. The last small remainder is re-applied at the swap.
    private func catchUp(_ hnsw: VectorIndex, _ task: IndexBuild) -> Bool {
        while !task.isCancelled {
            let changed: [UInt32] = state.withWriteLock {
                guard task.changed.count >= 2_000 else { return [] }
                defer { task.changed = [] }
                return task.changed.sorted()
            }
            if changed.isEmpty { return true }
            var slots: [UInt32] = []
            var vectors: [Float] = []
            state.withReadLock {
                for slot in changed {
                    let live = buffer.isLive(Int(slot))
                    // Written just before the snapshot copy reached it: already in the graph as it is.
                    if live && hnsw.matches(slot: slot, vector: buffer.vector(Int(slot))) { continue }
                    // A deleted or replaced element's old node is retired; a live one is inserted anew.
                    hnsw.remove(slot: slot)
                    guard live else { continue }
                    slots.append(slot)
                    vectors.append(contentsOf: UnsafeBufferPointer(start: buffer.vector(Int(slot)), count: dimension))
                }
            }
            let ok = vectors.withUnsafeBufferPointer { v in
                hnsw.addBatch(slots: slots, vectors: v.baseAddress ?? UnsafePointer(bitPattern: 16)!, threads: indexer.threads) { _ in
                    !task.isCancelled
                }
            }
            if !ok { return false }
        }
        return false
    }

    private func finishCancelled(_ task: IndexBuild) {
        state.withWriteLock {
            if build === task { build = nil }
        }
    }

    /// Copies the live vectors and their slots, in chunks so writers wait at most a moment each time.
    /// Writes that land meanwhile are in the build's change set and are re-applied at the swap.
    private func snapshotLiveVectors() -> ([UInt32], [Float]) {
        var slots: [UInt32] = []
        var vectors: [Float] = []
        var start = 0
        let chunk = 65_536
        while true {
            let done: Bool = state.withReadLock {
                let end = min(buffer.slotCount, start + chunk)
                if slots.isEmpty {
                    slots.reserveCapacity(buffer.liveCount)
                    vectors.reserveCapacity(buffer.liveCount * dimension)
                }
                for slot in start..<max(start, end) where buffer.isLive(slot) {
                    slots.append(UInt32(slot))
                    vectors.append(contentsOf: UnsafeBufferPointer(start: buffer.vector(slot), count: dimension))
                }
                start = end
                return end >= buffer.slotCount
            }
            if done { return (slots, vectors) }
        }
    }
}
