import LatentIndex
import LatentVectors

/// What VINFO reports about a collection, as values; the server turns it into text (VInfoReply).
public struct CollectionInfo: Sendable, Equatable {
    public enum IndexState: Sendable, Equatable {
        /// FLAT: the buffer is searched exactly; there is no index to build.
        case none
        case ready
        /// IVF before it has trained (too few vectors): searched exactly meanwhile.
        case untrained
        /// A full build runs; `progress` is 0...1.
        case building(progress: Double)
    }

    public var name: String
    public var metric: Metric
    public var dimension: Int
    public var size: Int
    /// The requested index (VCREATE / VREBUILD).
    public var requested: IndexSpec
    public var state: IndexState
    /// Vectors the serving index answers for (all of them for FLAT).
    public var indexed: Int
    /// Written but not yet in the index: searched exactly and merged.
    public var pending: Int
    public var deletedInIndex: Int
    public var builds: Int
    /// The serving index's own fields (HNSW M and EF_CONSTRUCTION, IVF NLIST, ...).
    public var indexFields: [IndexField]
    public var memoryBytes: Int
    /// Parts of `memoryBytes`: the attribute columns FILTER reads, the seen lists of this collection's
    /// elements as users, and the seen-slot sets cached for queries against it as items.
    public var attributeBytes = 0
    /// Parts of `memoryBytes`: the float32 vectors with their norms and liveness flags, and the serving
    /// index's own memory (graph links and, today, HNSW's copy of each vector; IVF lists).
    public var vectorBytes = 0
    public var indexBytes = 0
    public var seenListUsers = 0
    public var seenListBytes = 0
    public var seenSlotCacheBytes = 0
    /// The filter-match cache: bytes, and expressions held.
    public var filterCacheBytes = 0
    public var filterCacheEntries = 0
    /// Cached filters with a match index built (it may be stale until rebuilt).
    public var filterMatchIndexes = 0

    public struct IndexField: Sendable, Equatable {
        public var name: String
        public var value: String
    }
}
