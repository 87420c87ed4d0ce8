import LatentEngine
import LatentIndex
import LatentProtocol
import LatentVectors
import NIOCore

/// A VSIM answer as a ranked list, before a page of it is cut: what the result cache keeps, so OFFSET pages
/// are slices of one list.
struct Ranking {
    /// Element ids best first, and (with WITHSCORES / WITHATTRIBS) what the reply shows beside each.
    var ids: [[UInt8]]
    var values: [RESPValue]
    /// The number of hits asked for when it was computed; `complete` when fewer qualified (nothing
    /// further exists, so any page can be cut from it).
    var depth: Int
    var complete: Bool
    /// Whether the reply is a map (id -> value) rather than a plain array of ids.
    var keyed: Bool

    /// The page at `offset` of at most `count` hits, in the reply shape Redis uses.
    func page(offset: Int, count: Int) -> RESPValue {
        let start = min(offset, ids.count)
        let end = start + min(count, ids.count - start)
        guard keyed else { return .array(ids[start..<end].map { .bulk(bytes: $0) }) }
        var out: [RESPValue] = []
        out.reserveCapacity((end - start) * 2)
        for i in start..<end {
            out.append(.bulk(bytes: ids[i]))
            out.append(values[i])
        }
        return .map(out)
    }

    /// This ranking followed by the hits of a deeper one that it does not hold: pages already served
    /// from this one stay as they were, and later pages never repeat an element.
    func extended(by deeper: Ranking) -> Ranking {
        var out = self
        let have = Set(ids)
        for (i, id) in deeper.ids.enumerated() where !have.contains(id) {
            out.ids.append(id)
            if keyed { out.values.append(deeper.values[i]) }
        }
        out.depth = deeper.depth
        out.complete = deeper.complete
        return out
    }

    /// The form stored in the result cache.
    var cached: RESPValue {
        var flat: [RESPValue] = []
        flat.reserveCapacity(ids.count * (keyed ? 2 : 1))
        for (i, id) in ids.enumerated() {
            flat.append(.bulk(bytes: id))
            if keyed { flat.append(values[i]) }
        }
        return .array([.integer(depth), .integer(complete ? 1 : 0), .array(flat)])
    }

    init(ids: [[UInt8]], values: [RESPValue], depth: Int, complete: Bool, keyed: Bool) {
        self.ids = ids
        self.values = values
        self.depth = depth
        self.complete = complete
        self.keyed = keyed
    }

    init?(cached: RESPValue, keyed: Bool) {
        guard case .array(let parts) = cached, parts.count == 3, case .integer(let depth) = parts[0],
              case .integer(let complete) = parts[1], case .array(let flat) = parts[2] else { return nil }
        let stride = keyed ? 2 : 1
        var ids: [[UInt8]] = [], values: [RESPValue] = []
        var i = 0
        while i + stride <= flat.count {
            guard case .bulkString(let id) = flat[i] else { return nil }
            ids.append(Array(id.readableBytesView))
            if keyed { values.append(flat[i + 1]) }
            i += stride
        }
        self.init(ids: ids, values: values, depth: depth, complete: complete != 0, keyed: keyed)
    }
}

/// VSIM: the query vector (a given one, an element's, a fold-in), exclusions (EXCLUDE, the seen list of
/// EXCLUDE-SEEN / SEEN-OF), the engine's search, range bounds (EPSILON, MINSCORE, MAXDIST) and the page
/// (OFFSET, COUNT), through the result cache when it is enabled.
extension CommandExecutor {
    /// VSIM through the result cache. Rankings are cached by everything but COUNT and OFFSET, computed one
    /// page ahead, so "load more" (OFFSET n) is served from the list page 1 computed and pages agree with
    /// each other. The collections' versions are read before searching, so a ranking computed across a
    /// write is stored under the older version and never served.
    func cachedSimilar(_ request: VSimRequest, args: [ByteBuffer]) throws -> RESPValue {
        var names = [request.key]
        if case .element(_, let from?) = request.input { names.append(from) }
        if let owner = request.seenOf { names.append(owner.collection) }
        let collections = names.compactMap { catalog.collection($0) }
        guard collections.count == names.count else { return try similar(request) }
        let dependencies = collections.map { ResultCache.Dependency(collection: $0.collectionId, version: $0.writeVersion) }
        let key = request.rankingKey
        let keyed = request.withScores || request.withAttributes
        let needed = Self.depth(offset: request.offset, count: request.count)
        var previous: Ranking?
        if let hit = cache.lookup(key, current: dependencies), let ranking = Ranking(cached: hit, keyed: keyed) {
            if ranking.complete || ranking.depth >= needed { return ranking.page(offset: request.offset, count: request.count) }
            previous = ranking
        }
        // One page ahead: HNSW's default ef (max(100, k)) makes this free for common page sizes.
        let ahead = request.count <= 100 ? Self.depth(offset: needed, count: request.count) : needed
        var ranking = try rank(request, depth: ahead)
        if let previous { ranking = previous.extended(by: ranking) }
        cache.store(key, reply: ranking.cached, dependencies: dependencies)
        return ranking.page(offset: request.offset, count: request.count)
    }

    func similar(_ request: VSimRequest) throws -> RESPValue {
        try rank(request, depth: Self.depth(offset: request.offset, count: request.count))
            .page(offset: request.offset, count: request.count)
    }

    /// offset + count, saturating (COUNT may be any positive integer, as in Redis).
    static func depth(offset: Int, count: Int) -> Int {
        let (sum, overflow) = offset.addingReportingOverflow(max(count, 0))
        return overflow ? Int.max : sum
    }

    /// The best `depth` hits of the request (after its range bounds), as a ranking.
    func rank(_ request: VSimRequest, depth: Int) throws -> Ranking {
        guard request.count >= 1 else { throw EngineError.invalidCount(request.count) }
        let keyed = request.withScores || request.withAttributes
        guard let c = catalog.collection(request.key) else {
            if case .element(_, let from?) = request.input { _ = try catalog.require(from) }
            if let owner = request.seenOf { _ = try catalog.require(owner.collection) }
            return Ranking(ids: [], values: [], depth: depth, complete: true, keyed: keyed)
        }
        if request.epsilon != nil && c.metric != .cosine {
            throw CommandError.syntax("EPSILON needs a COSINE collection: it bounds Redis' similarity 1 - cosine_distance/2")
        }
        if request.minScore != nil && c.metric == .l2 {
            throw CommandError.syntax("MINSCORE bounds IP and COSINE scores; '\(request.key)' is L2: use MAXDIST")
        }
        if request.maxDistance != nil && c.metric != .l2 {
            throw CommandError.syntax("MAXDIST bounds L2 distances; '\(request.key)' is \(c.metric.rawValue.uppercased()): use MINSCORE")
        }
        let query: [Float]
        var excluding = Set(request.exclude)
        var seenOwner: (collection: String?, user: ElementID)?
        switch request.input {
        case .vector(let v):
            query = try c.projectedInput(v)
        case .element(let element, let from):
            let source = try from.map { try catalog.require($0) } ?? c
            guard let v = source.vector(of: element) else { throw EngineError.elementNotFound(element) }
            query = v
            seenOwner = (from, element)
        case .foldIn(let items, let weights):
            query = try c.foldIn(items: items, weights: weights)
            // A new user has seen what they named: those items are not recommended back.
            excluding.formUnion(items)
        }
        var seen: SeenSnapshot?
        if request.excludeSeen {
            if let owner = request.seenOf { seenOwner = (owner.collection, owner.user) }
            guard let (collection, user) = seenOwner else {
                if case .foldIn = request.input {
                    throw CommandError.syntax("FOLDIN already leaves its items out; EXCLUDE-SEEN with FOLDIN needs whose list: SEEN-OF users-collection user")
                }
                throw CommandError.syntax("EXCLUDE-SEEN needs ELE user FROM users-collection, or SEEN-OF users-collection user: whose seen list to leave out")
            }
            let source = try collection.map { try catalog.require($0) } ?? c
            guard source.contains(user) else { throw EngineError.elementNotFound(user) }
            seen = source.seenSnapshot(of: user)
        }
        let params = SearchParameters(k: max(1, min(depth, Int(Int32.max))), ef: request.ef, nprobe: request.nprobe)
        var hits = try c.search(query, params, exact: request.truth, withAttributes: request.withAttributes, excluding: excluding,
                                seen: seen, filter: request.filter, filterBudget: request.filterEF)
        let found = hits.count
        if let epsilon = request.epsilon { hits = hits.filter { 1 - $0.score <= epsilon } }
        if let minScore = request.minScore { hits = hits.filter { $0.score >= minScore } }
        if let maxDistance = request.maxDistance { hits = hits.filter { $0.score <= maxDistance } }
        // Hits come best first, so a bound that cut any of them cut everything after them too.
        let complete = found < depth || hits.count < found
        return Self.ranking(hits, depth: depth, complete: complete, withScores: request.withScores,
                            withAttributes: request.withAttributes)
    }

    /// Hits in Redis' reply shapes: a plain array of elements, or (with scores or attributes) a map
    /// element -> score, element -> attributes, or element -> [score, attributes]; RESP2 writes it flat.
    static func ranking(_ hits: [SearchHit], depth: Int, complete: Bool, withScores: Bool, withAttributes: Bool) -> Ranking {
        let keyed = withScores || withAttributes
        var values: [RESPValue] = []
        if keyed {
            values.reserveCapacity(hits.count)
            for hit in hits {
                let score = RESPValue.double(float: Float(hit.score))
                let attributes = hit.attributes.map { RESPValue.bulk(bytes: $0) } ?? .null
                switch (withScores, withAttributes) {
                case (true, true): values.append(.group([score, attributes]))
                case (true, false): values.append(score)
                default: values.append(attributes)
                }
            }
        }
        return Ranking(ids: hits.map(\.id.bytes), values: values, depth: depth, complete: complete, keyed: keyed)
    }
}

/// VRECOMMEND: examples are read from FROM (or the searched collection) and left out of the answer.
extension CommandExecutor {
    func recommend(_ request: VRecommendRequest) throws -> RESPValue {
        let source = try request.from.map { try catalog.require($0) }
        guard let c = catalog.collection(request.key) else { return .array([]) }
        let examples = source ?? c
        func vectors(_ ids: [ElementID]) throws -> [[Float]] {
            try ids.map { id in
                guard let v = examples.vector(of: id) else { throw EngineError.elementNotFound(id) }
                guard v.count == c.dimension else {
                    throw EngineError.dimensionMismatch(collection: request.key, expected: c.dimension, got: v.count)
                }
                return v
            }
        }
        let positives = try vectors(request.positives), negatives = try vectors(request.negatives)
        let params = SearchParameters(k: request.count, ef: request.ef, nprobe: request.nprobe)
        let hits = try c.recommend(positives: positives, negatives: negatives, strategy: request.strategy == .best ? .best : .average,
                                   params, exact: request.truth, withAttributes: request.withAttributes,
                                   excluding: Set(request.positives + request.negatives), filter: request.filter)
        return Self.ranking(hits, depth: request.count, complete: true, withScores: request.withScores,
                            withAttributes: request.withAttributes).page(offset: 0, count: request.count)
    }
}
