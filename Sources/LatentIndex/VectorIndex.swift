import Foundation
import LatentVectors

/// Which index a collection uses, with its build parameters.
public struct IndexSpec: Equatable, Sendable, Codable {
    public enum Kind: String, Sendable, Codable, CaseIterable {
        case flat = "FLAT"
        case hnsw = "HNSW"
        case ivf = "IVF"
    }
    public var kind: Kind
    /// HNSW links per node (layer 0 keeps 2M).
    public var m: Int?
    public var efConstruction: Int?
    /// IVF list count; nil chooses from the collection size at build time.
    public var nlist: Int?

    public init(kind: Kind, m: Int? = nil, efConstruction: Int? = nil, nlist: Int? = nil) {
        self.kind = kind
        self.m = m
        self.efConstruction = efConstruction
        self.nlist = nlist
    }

    public static let flat = IndexSpec(kind: .flat)

    public static let defaultM = 16
    public static let defaultEfConstruction = 200

    /// HNSW's build parameters as the graph uses them: M at least 2, efConstruction at least M (a
    /// candidate list shorter than M could not fill a node's links). One rule for the index and the catalog.
    public static func hnswParameters(m: Int?, efConstruction: Int?) -> (m: Int, efConstruction: Int) {
        let m = max(2, m ?? defaultM)
        return (m, max(efConstruction ?? defaultEfConstruction, m))
    }

    /// The spec exactly as an index built from it reports it (defaults filled in, values clamped as the
    /// index clamps them). Stored definitions are resolved, so a built index always equals its definition
    /// (a definition that differed from every build it caused made builds loop). IVF's NLIST stays nil
    /// when it is to be chosen from the collection's size at each build.
    public var resolved: IndexSpec {
        switch kind {
        case .flat: return .flat
        case .hnsw:
            let p = Self.hnswParameters(m: m, efConstruction: efConstruction)
            return IndexSpec(kind: .hnsw, m: p.m, efConstruction: p.efConstruction)
        case .ivf: return IndexSpec(kind: .ivf, nlist: nlist)
        }
    }

    /// Whether an index built with this (resolved) spec serves a request for `requested`: same kind and
    /// parameters, where an IVF request without NLIST accepts whatever list count was chosen.
    public func satisfies(_ requested: IndexSpec) -> Bool {
        let r = requested.resolved
        guard kind == r.kind else { return false }
        switch kind {
        case .flat: return true
        case .hnsw: return m == r.m && efConstruction == r.efConstruction
        case .ivf: return r.nlist == nil || nlist == r.nlist
        }
    }

    /// VREBUILD's merge, in one place: options given replace the current ones; options not given keep
    /// the current value when the kind stays, and take the new kind's defaults when it changes.
    public func rebuilt(kind newKind: Kind?, m newM: Int?, efConstruction newEf: Int?, nlist newNlist: Int?) -> IndexSpec {
        let target = newKind ?? kind
        let same = target == kind
        return IndexSpec(kind: target, m: newM ?? (same ? m : nil), efConstruction: newEf ?? (same ? efConstruction : nil),
                         nlist: newNlist ?? (same ? nlist : nil)).resolved
    }
}

/// Which slots a search may return (a FILTER, excluded ids); called on the searching thread only.
public typealias SlotPredicate = (UInt32) -> Bool

/// Per-query knobs; an index ignores the ones that do not apply to it.
public struct SearchParameters {
    public var k: Int
    public var ef: Int?
    public var nprobe: Int?
    /// When set, only slots it accepts are results. Indexes apply it inside the search, never after:
    /// HNSW walks through rejected nodes but keeps only accepted ones (so its result list fills with
    /// accepted nodes however rare), IVF probes further lists until it has `k`, FLAT skips them.
    public var allows: SlotPredicate?
    /// The fraction of live elements `allows` accepts, when the caller knows or estimated it: IVF tests
    /// the filter before computing distances below `IVFFlatIndex.testFirstSelectivity`.
    public var selectivity: Double?

    public init(k: Int, ef: Int? = nil, nprobe: Int? = nil, allows: SlotPredicate? = nil, selectivity: Double? = nil) {
        self.k = k
        self.ef = ef
        self.nprobe = nprobe
        self.allows = allows
        self.selectivity = selectivity
    }
}

/// What FLAT, HNSW and IVF all provide, so a collection never asks which one it holds (FAISS' Index:
/// is-trained, train + add as a build, add, search, remove).
///
/// Indexes are pure computation over memory: no I/O, no locking of their own. The collection calls
/// `search` under its read lock and the mutations under its write lock. Results carry the collection's
/// slots and internal distances (lower is better), best first; ties are the collection's to order.
/// `IndexFactory` makes empty and built indexes from an `IndexSpec`; it is the one place that knows
/// the kinds.
public protocol VectorIndex: AnyObject {
    /// The resolved spec the index was built with (what VINFO reports and the catalog stores).
    var spec: IndexSpec { get }
    var metric: Metric { get }
    var dimension: Int { get }
    /// Whether the index can place vectors. An IVF index before k-means has run cannot: until it is
    /// trained, the collection keeps every vector in its pending tail and searches them exactly.
    var isTrained: Bool { get }
    /// Whether the index is the collection's vector buffer itself (FLAT): nothing is added to it and a
    /// search is an exact scan of the buffer.
    var scansCollectionBuffer: Bool { get }
    /// Whether `add` is cheap enough for the write path (FLAT, IVF). Otherwise writes wait in the
    /// collection's pending tail (searched exactly) until a background task adds them.
    var cheapToAdd: Bool { get }
    /// Vectors the index answers for.
    var liveCount: Int { get }
    /// Replaced or deleted entries still held (HNSW keeps them as graph waypoints until a rebuild).
    var deletedCount: Int { get }
    /// Adds the vector of `slot`, replacing what the index had for it. Only called when trained.
    func add(slot: UInt32, vector: UnsafePointer<Float>)
    /// Adds many vectors (`vectors` holds slots.count rows), using up to `threads` threads; false when
    /// `shouldContinue` stopped it. Used to catch a fresh build up with the writes made during it.
    func addBatch(slots: [UInt32], vectors: UnsafePointer<Float>, threads: Int, shouldContinue: @escaping (Int) -> Bool) -> Bool
    /// Forgets `slot`; it is never returned again.
    func remove(slot: UInt32)
    func contains(slot: UInt32) -> Bool
    /// The best `params.k` slots for `query`.
    func search(_ query: UnsafePointer<Float>, _ params: SearchParameters) -> [Neighbor]
    /// Bytes the index holds.
    var memoryBytes: Int { get }
    /// The slots the index answers for (after loading a snapshot, to check it against the collection).
    var indexedSlots: [UInt32] { get }
    /// Whether the index holds exactly this vector for `slot` (a loaded snapshot may be stale).
    func matches(slot: UInt32, vector: UnsafePointer<Float>) -> Bool
    /// Whether a full build should replace this index now: the request changed, or the index's own
    /// measure of decay says so (HNSW: deleted nodes or a long tail; IVF: untrained with enough data, or
    /// lists trained on far fewer vectors than there are).
    func wantsRebuild(requested: IndexSpec, live: Int, pending: Int) -> Bool
    /// The index's own VINFO fields (parameters, training state).
    var infoFields: [(String, String)] { get }
    /// Whether removals left work for `repair` (HNSW: tombstones to unlink).
    var hasRepairWork: Bool { get }
    /// Does repair work until `deadline` (DispatchTime uptime nanoseconds); `idle` when nothing else
    /// waits, so small amounts of work are worth starting. Returns whether work remains.
    func repair(until deadline: UInt64, idle: Bool) -> Bool
    /// A graph index's neighbours of `slot`, one list per layer from the highest down to layer 0 (VLINKS);
    /// nil for indexes without a graph or a slot the graph does not hold.
    func links(ofSlot slot: UInt32) -> [[UInt32]]?
    /// The graph's highest layer (VINFO max-level); nil for indexes without a graph.
    var graphMaxLevel: Int? { get }
}

extension VectorIndex {
    public var isTrained: Bool { true }
    public var scansCollectionBuffer: Bool { false }
    public var infoFields: [(String, String)] { [] }
    public var hasRepairWork: Bool { false }
    public func repair(until deadline: UInt64, idle: Bool) -> Bool { false }
    public func links(ofSlot slot: UInt32) -> [[UInt32]]? { nil }
    public var graphMaxLevel: Int? { nil }

    /// One `add` per vector, checking `shouldContinue` every 1,000.
    public func addBatch(slots: [UInt32], vectors: UnsafePointer<Float>, threads: Int,
                         shouldContinue: @escaping (Int) -> Bool) -> Bool {
        for (i, slot) in slots.enumerated() {
            if i % 1_000 == 0, !shouldContinue(i) { return false }
            add(slot: slot, vector: vectors + i * dimension)
        }
        return true
    }

    public func wantsRebuild(requested: IndexSpec, live: Int, pending: Int) -> Bool { !spec.satisfies(requested) }
}

extension VectorIndex {
    /// Runs `body` with `v` as graph and list indexes compare it: normalised to unit length under COSINE
    /// (they serve COSINE as inner product over unit vectors), unchanged otherwise.
    func withComparable<T>(_ v: UnsafePointer<Float>, dimension: Int, _ body: (UnsafePointer<Float>) -> T) -> T {
        guard metric == .cosine else { return body(v) }
        return withUnsafeTemporaryAllocation(of: Float.self, capacity: dimension) { buf in
            let inv = DistanceKernels.inverseNorm(v, dimension)
            for i in 0..<dimension { buf[i] = v[i] * inv }
            return body(UnsafePointer(buf.baseAddress!))
        }
    }

    /// Compares `stored` with `vector` as the index stores it (normalised under COSINE).
    func sameVector(_ stored: UnsafePointer<Float>, _ vector: UnsafePointer<Float>, dimension: Int) -> Bool {
        if metric != .cosine { return memcmp(stored, vector, dimension * 4) == 0 }
        let inv = DistanceKernels.inverseNorm(vector, dimension)
        for i in 0..<dimension where stored[i] != vector[i] * inv { return false }
        return true
    }
}
