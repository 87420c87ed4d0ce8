import Foundation
import LatentEngine
import LatentIndex
import LatentProtocol
import LatentVectors
import NIOCore

/// The vector commands: Redis 8.4's vector sets (reply types as Redis gives them: booleans for
/// VADD/VREM/VISMEMBER/VSETATTR, doubles for scores and components, maps where RESP3 has them) and
/// LatentDB's own (VCREATE, VLIST, VDROP, VRENAME, VREBUILD, VSETSEEN).
extension CommandExecutor {
    func runVectorCommand(_ command: Command) throws -> RESPValue {
        switch command {
        case .vcreate(let key, let dimension, let metric, let index, let modelJSON):
            var model: ModelParameters?
            if let modelJSON {
                do {
                    model = try JSONDecoder().decode(ModelParameters.self, from: Data(modelJSON.utf8))
                } catch {
                    throw CommandError.syntax("MODEL must be a JSON object with at least \"method\" and \"regularization\" "
                                              + "(as latentctl load sends it): \(error)")
                }
                if let factors = model?.factors, factors > dimension {
                    throw CommandError.syntax("MODEL says \(factors) factors but DIM is \(dimension)")
                }
            }
            try catalog.create(name: key, dimension: dimension, metric: metric, index: index, model: model)
            return .ok
        case .vadd(let request):
            do {
                return try add(request)
            } catch EngineError.collectionDropped {
                // The set was removed with its last element between lookup and write: create it afresh.
                return try add(request)
            }
        case .vsim(let request):
            return try similar(request)
        case .vrem(let key, let element):
            guard let c = catalog.collection(key) else { return .boolean(false) }
            let removed = try c.remove(id: element)
            if removed && c.implicit && c.count == 0 { try catalog.dropIfEmptyImplicit(key) }
            return .boolean(removed)
        case .vismember(let key, let element):
            return .boolean(catalog.collection(key)?.contains(element) == true)
        case .vemb(let key, let element, let raw):
            guard let c = catalog.collection(key), let v = c.vector(of: element) else { return .null }
            guard raw else { return .array(c.encoding.shown(v).map { .double(float: $0) }) }
            let r = c.encoding.raw(v)
            var out: [RESPValue] = [.simpleString(c.encoding.rawValue), .bulk(bytes: r.bytes), .double(r.l2)]
            if let range = r.range { out.append(.double(range)) }
            return .array(out)
        case .vcard(let key):
            return .integer(catalog.collection(key)?.count ?? 0)
        case .vdim(let key):
            guard let c = catalog.collection(key) else { return .err("key does not exist") }
            return .integer(c.dimension)
        case .vsetattr(let key, let element, let json):
            guard let c = catalog.collection(key) else { return .boolean(false) }
            return .boolean(try c.setAttributes(id: element, json: json))
        case .vgetattr(let key, let element):
            guard let c = catalog.collection(key), c.contains(element) else { return .null }
            // A storage error (a damaged attrs file) is reported, never turned into a silent null.
            do {
                return try c.attributes(of: element).map { RESPValue.bulk(bytes: $0) } ?? .null
            } catch EngineError.elementNotFound {
                return .null // deleted between the check and the read
            }
        case .vinfo(let key):
            guard let c = catalog.collection(key) else { return .nullArray }
            c.settleIndex()
            return VInfoReply.reply(c.info(), redis: try c.redisInfo(), collection: c)
        case .vlinks(let key, let element, let withScores):
            guard let c = catalog.collection(key) else { return .null }
            c.settleIndex()
            guard let layers = c.links(of: element) else { return .null }
            return .array(layers.map { layer in
                withScores
                    ? .map(layer.flatMap { [RESPValue.bulk(bytes: $0.id.bytes), .double(float: Float($0.score))] })
                    : .array(layer.map { .bulk(bytes: $0.id.bytes) })
            })
        case .vrandmember(let key, let count):
            guard let count else {
                return catalog.collection(key)?.randomMembers(1, allowRepeats: false).first.map { .bulk(bytes: $0.bytes) } ?? .null
            }
            guard let c = catalog.collection(key), count != 0 else { return .array([]) }
            let (magnitude, overflow) = (0 as Int).subtractingReportingOverflow(count)
            let n = count < 0 ? (overflow ? Int.max : magnitude) : count
            // Repeats (a negative count) are not bounded by the set's size; the reply is built in memory
            // before it is sent, so their number is capped (Redis streams it and has no cap).
            guard count > 0 || n <= 100_000 else {
                return .err("value is out of range: VRANDMEMBER with a negative count returns at most 100000 elements")
            }
            return .array(c.randomMembers(n, allowRepeats: count < 0).map { .bulk(bytes: $0.bytes) })
        case .vrange(let key, let start, let end, let count):
            guard let c = catalog.collection(key) else { return .array([]) }
            func bound(_ b: RangeBound) -> ([UInt8]?, Bool) {
                switch b {
                case .unbounded: return (nil, true)
                case .inclusive(let v): return (v, true)
                case .exclusive(let v): return (v, false)
                }
            }
            let (s, si) = bound(start), (e, ei) = bound(end)
            return .array(try c.range(from: s, startInclusive: si, to: e, endInclusive: ei, limit: count).map { .bulk(bytes: $0.bytes) })
        case .vlist:
            return .array(catalog.names.map { .bulk($0) })
        case .vdrop(let key):
            return .integer(try catalog.drop(key) ? 1 : 0)
        case .vsetseen(let key, let element, let items):
            guard let c = catalog.collection(key) else { return .integer(0) }
            return .integer(try c.setSeen(id: element, items: items) ? 1 : 0)
        case .vaddseen(let key, let element, let items), .vremseen(let key, let element, let items):
            guard let c = catalog.collection(key) else { throw EngineError.unknownCollection(key) }
            let changed: Int?
            if case .vaddseen = command { changed = try c.addSeen(id: element, items: items) } else { changed = try c.removeSeen(id: element, items: items) }
            guard let changed else { throw EngineError.elementNotFound(element) }
            return .integer(changed)
        case .vgetseen(let key, let element):
            guard let c = catalog.collection(key), c.contains(element) else { return .array([]) }
            return .array(c.seen(of: element).map { .bulk(bytes: $0.bytes) })
        case .vrecommend(let request):
            return try recommend(request)
        case .vrename(let key, let newKey):
            try catalog.rename(key, to: newKey)
            return .ok
        case .vrebuild(let key, let kind, let m, let efConstruction, let nlist):
            try catalog.rebuild(key) { $0.rebuilt(kind: kind, m: m, efConstruction: efConstruction, nlist: nlist) }
            return .ok
        default:
            return .err("internal: \(command.name) is not a vector command")
        }
    }

    /// VADD: creates the set on a missing key as Redis does (COSINE, HNSW, Q8 unless NOQUANT/BIN, REDUCE's
    /// projection); on an existing one, a quantization, M or REDUCE that contradicts it is an error.
    private func add(_ r: VAddRequest) throws -> RESPValue {
        let (c, item) = try prepareAdd(r)
        return .boolean(try c.upsert([item])[0].get())
    }

    /// VADD's checks against the set (created here when missing, as Redis does) and the element to write.
    func prepareAdd(_ r: VAddRequest) throws -> (Collection, Collection.Upsert) {
        let encoding: VectorEncoding? = r.quantization.map {
            switch $0 {
            case .noquant: return .fp32
            case .q8: return .q8
            case .bin: return .bin
            }
        }
        let creation = CollectionCatalog.ImplicitCreation(
            dimension: r.reduce ?? r.vector.count, encoding: encoding ?? .q8, m: r.m,
            projection: r.reduce.map { _ in Projection(inputDimension: r.vector.count, seed: UInt64.random(in: 1...UInt64.max)) })
        let (c, created) = try catalog.collectionCreatingIfMissing(r.key, creation)
        if !created {
            if let encoding, encoding != c.encoding { throw CommandError.syntax("asked quantization mismatch with existing vector set") }
            let spec = c.definition.index
            if let m = r.m, spec.kind == .hnsw, IndexSpec.hnswParameters(m: spec.m, efConstruction: nil).m != m {
                throw CommandError.syntax("asked M value mismatch with existing vector set")
            }
            if let reduce = r.reduce {
                guard c.projection != nil else { throw CommandError.syntax("cannot add projection to existing set without projection") }
                guard reduce == c.dimension else { throw CommandError.syntax("projection dimension mismatch with existing set") }
            }
        }
        let vector = try c.projectedInput(r.vector)
        // SETATTR "" removes the attributes, as in Redis.
        let attributes: Collection.Upsert.AttributeChange = r.attributes.map { $0.isEmpty ? .remove : .set($0) } ?? .keep
        return (c, Collection.Upsert(id: r.element, vector: vector, attributes: attributes))
    }
}
