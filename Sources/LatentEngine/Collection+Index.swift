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
    /// Pending entries an HNSW index absorbs one by one before a full (parallel) build is cheaper.
    static let incrementalLimit = 5_000
    /// IVF needs this many vectors before k-means has something to learn from.
    static let ivfMinimumTrainingSize = 1_000
    /// The longest a background step holds the write lock.
    static let drainSlice: UInt64 = 2_000_000 // ns

    static func emptyIndex(for spec: IndexSpec, metric: Metric, dimension: Int, buffer: VectorBuffer) -> VectorIndex {
        switch spec.kind {
        case .flat, .ivf:
            // IVF cannot place vectors before it has trained on some: until then everything is pending.
            return FlatIndex(metric: metric, buffer: buffer)
        case .hnsw:
            // Created small: an empty collection costs a few KB, and the graph doubles as it grows.
            return HNSWIndex(metric: metric, dimension: dimension, m: spec.m ?? IndexSpec.defaultM,
                             efConstruction: spec.efConstruction ?? IndexSpec.defaultEfConstruction, capacity: 0)
        }
    }

    /// Called under the write lock for every changed slot: keeps the index, the pending tail and a
    /// running build's change set consistent with the buffer.
    func noteChanged(slot: UInt32, live: Bool) {
        build?.changed.insert(slot)
        if indexSpec.kind == .flat && index is FlatIndex { return } // the buffer is the index
        snapshotDirty = true
        if live, index.cheapToAdd, !(index is FlatIndex) {
            index.add(slot: slot, vector: buffer.vector(Int(slot)))
            return
        }
        index.remove(slot: slot)
        if live { pending.append(slot) } else { pending.remove(slot) }
    }

    /// Starts whatever background work the collection needs: a drain of the pending tail, or a full
    /// build when the tail is too long to drain one by one, the index is missing, or deleted entries
    /// have piled up.
    func scheduleIndexMaintenance() {
        var startBuild = false
        var startDrain = false
        state.withWriteLock {
            guard !dropped, build == nil, indexSpec.kind != .flat else { return }
            let indexed = index is FlatIndex ? 0 : index.liveCount
            switch indexSpec.kind {
            case .flat:
                return
            case .ivf:
                // Lists trained on n vectors serve up to 2n; past that they grow long and are re-trained
                // (geometric growth: the rebuilds cost about one extra build in total).
                let live = buffer.liveCount
                startBuild = (index is FlatIndex && live >= Collection.ivfMinimumTrainingSize)
                    || (!(index is FlatIndex) && indexSpec.nlist == nil && live > 2 * max(ivfTrainedFor, 1))
            case .hnsw:
                startBuild = pending.count > max(Collection.incrementalLimit, indexed / 5)
                    || index.deletedCount > max(1_000, indexed / 4)
                    || index.spec != indexSpecResolved
            }
            if startBuild {
                build = IndexBuild(spec: indexSpec)
            } else if !pending.isEmpty && !drainScheduled && !(index is FlatIndex) {
                drainScheduled = true
                startDrain = true
            }
        }
        if startBuild { runBuild() }
        if startDrain { indexer.drain { [self] in drainPending() } }
    }

    /// The requested spec with defaults filled in, to compare with what an index was built with.
    var indexSpecResolved: IndexSpec { indexSpec.resolved }

    /// Adds pending vectors to the index in slices of at most `drainSlice`, then pauses as long as the
    /// slice took: half of the time the lock is free, so writes and searches never queue behind a
    /// long run of slices (a pthread rwlock does not hand the lock to waiters in order).
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
                if pending.isEmpty { drainScheduled = false }
                return !pending.isEmpty
            }
            if !more { return }
            let took = DispatchTime.now().uptimeNanoseconds - sliceStart
            usleep(useconds_t(min(took, Collection.drainSlice) / 1000))
        }
    }

    /// Requests a rebuild with `spec` (VREBUILD). The old index serves until the new one is swapped in.
    public func rebuild(with spec: IndexSpec) {
        state.withWriteLock {
            build?.cancel()
            indexSpec = spec
            build = spec.kind == .flat ? nil : IndexBuild(spec: spec)
            if spec.kind == .flat {
                index = FlatIndex(metric: metric, buffer: buffer)
                pending = []
            }
        }
        if spec.kind != .flat { runBuild() }
    }

    /// Builds a new index from a snapshot of the live vectors on the build queue, then swaps it in.
    private func runBuild() {
        guard let task = state.withReadLock({ build }) else { return }
        indexer.build { [self] in
            let started = DispatchTime.now().uptimeNanoseconds
            guard !task.isCancelled else { return finishCancelled(task) }
            let (slots, vectors) = snapshotLiveVectors()
            let built: VectorIndex? = vectors.withUnsafeBufferPointer { v -> VectorIndex? in
                let base = v.baseAddress ?? UnsafePointer(bitPattern: 16)!
                switch task.spec.kind {
                case .hnsw:
                    let hnsw = HNSWIndex(metric: metric, dimension: dimension, m: task.spec.m ?? IndexSpec.defaultM,
                                         efConstruction: task.spec.efConstruction ?? IndexSpec.defaultEfConstruction,
                                         capacity: slots.count)
                    let n = Double(max(slots.count, 1))
                    let ok = hnsw.build(slots: slots, vectors: base, threads: indexer.threads) { done in
                        task.progress = Double(done) / n
                        return !task.isCancelled
                    }
                    return ok ? hnsw : nil
                case .ivf:
                    guard slots.count >= 1 else { return nil }
                    return IVFFlatIndex.build(metric: metric, dimension: dimension, slots: slots, vectors: base,
                                              nlist: task.spec.nlist, threads: indexer.threads) { fraction in
                        task.progress = fraction
                        return !task.isCancelled
                    }
                case .flat:
                    return nil
                }
            }
            guard let built, !task.isCancelled else { return finishCancelled(task) }
            if let hnsw = built as? HNSWIndex, !catchUp(hnsw, task) { return finishCancelled(task) }
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
                ivfTrainedFor = slots.count
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

    /// Inserts what was written during the build into the new graph before it serves, in rounds, while
    /// the backlog is large: a bulk load that outpaces the build then costs one insert per vector, not a
    /// second full build. The last small remainder is re-applied at the swap.
    private func catchUp(_ hnsw: HNSWIndex, _ task: IndexBuild) -> Bool {
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
                hnsw.build(slots: slots, vectors: v.baseAddress ?? UnsafePointer(bitPattern: 16)!, threads: indexer.threads) { _ in
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
