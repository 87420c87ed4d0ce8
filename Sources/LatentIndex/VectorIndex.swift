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
}

/// Per-query knobs; an index ignores the ones that do not apply to it.
public struct SearchParameters: Sendable {
    public var k: Int
    public var ef: Int?
    public var nprobe: Int?

    public init(k: Int, ef: Int? = nil, nprobe: Int? = nil) {
        self.k = k
        self.ef = ef
        self.nprobe = nprobe
    }
}

/// What FLAT, HNSW and IVF all provide, so a collection never cares which one it holds.
///
/// Indexes are pure computation over a `VectorBuffer` owned by the collection: no I/O, no locking. The
/// collection calls them with its read lock held for searches and its write lock held for changes.
public protocol VectorIndex: AnyObject {
    var spec: IndexSpec { get }
    var metric: Metric { get }
    /// The vector at `slot` was stored (or replaced) in the buffer.
    func didSet(slot: UInt32, in buffer: VectorBuffer)
    /// The vector at `slot` was deleted; it must never be returned again.
    func didRemove(slot: UInt32, in buffer: VectorBuffer)
    /// The best `params.k` live slots for `query`, best first; ties are ordered by `ranksBefore`.
    func search(_ query: UnsafePointer<Float>, in buffer: VectorBuffer, _ params: SearchParameters,
                ranksBefore: @escaping (UInt32, UInt32) -> Bool) -> [Neighbor]
    /// Bytes the index holds beyond the vectors themselves.
    var memoryBytes: Int { get }
}
