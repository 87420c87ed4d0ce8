import LatentEngine
import LatentProtocol

/// VINFO's reply: Redis' fields first, with Redis' types (quant-type as a simple string, numbers as
/// integers), then LatentDB's own as bulk strings. A map: RESP3 shows it as one, RESP2 as pairs.
enum VInfoReply {
    static func fields(_ info: CollectionInfo) -> [(String, String)] {
        var out = [("name", info.name), ("metric", info.metric.rawValue), ("dim", String(info.dimension)),
                   ("index", info.requested.kind.rawValue)]
        switch info.state {
        case .none: out.append(("index-state", "none"))
        case .ready: out.append(("index-state", "ready"))
        case .untrained: out.append(("index-state", "untrained"))
        case .building(let progress):
            out.append(("index-state", "building"))
            out.append(("build-progress", "\(Int(progress * 100))%"))
        }
        out += [("indexed", String(info.indexed)), ("pending", String(info.pending)),
                ("deleted-in-index", String(info.deletedInIndex)), ("builds", String(info.builds))]
        out += info.indexFields.map { ($0.name, $0.value) }
        out.append(("memory", String(info.memoryBytes)))
        out.append(("memory-attributes", String(info.attributeBytes)))
        out.append(("memory-attributes-per-element", String(info.size == 0 ? 0 : info.attributeBytes / info.size)))
        out.append(("seen-lists", String(info.seenListUsers)))
        out.append(("memory-seen-lists", String(info.seenListBytes)))
        out.append(("memory-seen-slot-cache", String(info.seenSlotCacheBytes)))
        out.append(("filter-cache-entries", String(info.filterCacheEntries)))
        out.append(("memory-filter-cache", String(info.filterCacheBytes)))
        out.append(("filter-match-indexes", String(info.filterMatchIndexes)))
        return out
    }

    /// The training parameters `latentctl load` stored (fold-in uses them), when there are any.
    static func modelFields(_ model: ModelParameters?) -> [(String, String)] {
        guard let m = model else { return [] }
        var out = [("model-method", m.method), ("model-regularization", "\(m.regularization)")]
        if let v = m.factors { out.append(("model-factors", String(v))) }
        if let v = m.alpha { out.append(("model-alpha", "\(v)")) }
        if let v = m.confidence { out.append(("model-confidence", v)) }
        if let v = m.logEpsilon { out.append(("model-log-epsilon", "\(v)")) }
        if let v = m.globalMean { out.append(("model-global-mean", "\(v)")) }
        if let v = m.biased { out.append(("model-biased", v ? "1" : "0")) }
        if let v = m.dataChecksum { out.append(("model-data-checksum", v)) }
        return out
    }

    static func reply(_ info: CollectionInfo, redis: Collection.RedisInfo, collection c: Collection) -> RESPValue {
        var flat: [RESPValue] = [
            .simpleString("quant-type"), .simpleString(c.encoding.rawValue),
            .simpleString("hnsw-m"), .integer(redis.m),
            .simpleString("vector-dim"), .integer(info.dimension),
            .simpleString("projection-input-dim"), .integer(c.projection?.inputDimension ?? 0),
            .simpleString("size"), .integer(info.size),
            .simpleString("max-level"), .integer(redis.maxLevel),
            .simpleString("attributes-count"), .integer(redis.attributesCount),
            .simpleString("vset-uid"), .integer(Int(c.collectionId)),
            .simpleString("hnsw-max-node-uid"), .integer(redis.maxNodeUID),
        ]
        for (k, v) in fields(info) + modelFields(c.model) { flat += [.bulk(k), .bulk(v)] }
        return .map(flat)
    }
}
