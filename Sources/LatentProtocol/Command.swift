import LatentFilter
import LatentIndex
import LatentVectors
import NIOCore

/// Where a query vector comes from.
public enum QueryInput: Equatable, Sendable {
    case vector([Float])
    /// An element's stored vector, from `collection` (another one, with FROM) or from the searched one.
    case element(ElementID, from: String?)
    /// FOLDIN n item... [WEIGHTS w...]: a new user's vector computed from the items they interacted with.
    case foldIn(items: [ElementID], weights: [Float]?)
}

public struct VSimRequest: Equatable, Sendable {
    public var key: String
    public var input: QueryInput
    public var count = 10
    public var withScores = false
    public var withAttributes = false
    public var ef: Int?
    public var nprobe: Int?
    public var truth = false
    /// Leave out the items stored as seen by the ELE ... FROM element (a user's rated items).
    public var excludeSeen = false
    /// EPSILON d: only hits whose similarity is at least 1 - d (COSINE; Redis' definition).
    public var epsilon: Double?
    /// FILTER expr: only elements whose attributes pass it (applied inside the search).
    public var filter: FilterExpression?
    /// FILTER-EF n: Redis' bounded effort, only the n nearest elements are tested against the filter
    /// (without it LatentDB returns COUNT results whenever COUNT elements match).
    public var filterEF: Int?
    /// SEEN-OF users-collection user: whose seen list EXCLUDE-SEEN leaves out (any query input).
    public var seenOf: SeenOwner?
    /// EXCLUDE n id...: ids left out of the answer (inside the search, like EXCLUDE-SEEN).
    public var exclude: [ElementID] = []
    /// MINSCORE x (IP, COSINE): only hits scoring at least x. MAXDIST x (L2): only hits at most x away.
    public var minScore: Double?
    public var maxDistance: Double?
    /// OFFSET n: skip the n best hits (pagination); COUNT hits follow.
    public var offset = 0

    public init(key: String, input: QueryInput, count: Int = 10, withScores: Bool = false, withAttributes: Bool = false,
                ef: Int? = nil, nprobe: Int? = nil, truth: Bool = false, excludeSeen: Bool = false) {
        self.excludeSeen = excludeSeen
        self.key = key
        self.input = input
        self.count = count
        self.withScores = withScores
        self.withAttributes = withAttributes
        self.ef = ef
        self.nprobe = nprobe
        self.truth = truth
    }
}

/// The user whose seen list a VSIM leaves out.
public struct SeenOwner: Equatable, Sendable {
    public var collection: String
    public var user: ElementID

    public init(collection: String, user: ElementID) {
        self.collection = collection
        self.user = user
    }
}

/// VRECOMMEND's arguments: recommend from example elements ("liked these, not those").
public struct VRecommendRequest: Equatable, Sendable {
    public enum Strategy: String, Equatable, Sendable {
        /// Search with the mean of the positives minus the mean of the negatives.
        case average = "AVERAGE"
        /// Score each candidate by its best similarity to a positive minus its best to a negative.
        case best = "BEST"
    }
    public var key: String
    public var positives: [ElementID]
    public var negatives: [ElementID] = []
    /// The collection the examples are read from (default: `key`).
    public var from: String?
    public var strategy = Strategy.average
    public var count = 10
    public var withScores = false
    public var withAttributes = false
    public var ef: Int?
    public var nprobe: Int?
    public var truth = false
    public var filter: FilterExpression?

    public init(key: String, positives: [ElementID]) {
        self.key = key
        self.positives = positives
    }
}

/// VADD's arguments: `VADD key [REDUCE dim] (FP32 blob | VALUES n ...) element [CAS] [NOQUANT|Q8|BIN]
/// [EF n] [SETATTR json] [M n]`. Options not given are nil.
public struct VAddRequest: Equatable, Sendable {
    public enum Quantization: String, Equatable, Sendable {
        case noquant = "NOQUANT", q8 = "Q8", bin = "BIN"
    }
    public var key: String
    public var vector: [Float]
    public var element: ElementID
    public var attributes: [UInt8]?
    public var reduce: Int?
    public var quantization: Quantization?
    public var m: Int?
    public var ef: Int?
    public var cas = false

    public init(key: String, vector: [Float], element: ElementID, attributes: [UInt8]? = nil, reduce: Int? = nil,
                quantization: Quantization? = nil, m: Int? = nil, ef: Int? = nil, cas: Bool = false) {
        self.key = key
        self.vector = vector
        self.element = element
        self.attributes = attributes
        self.reduce = reduce
        self.quantization = quantization
        self.m = m
        self.ef = ef
        self.cas = cas
    }
}

/// One end of a VRANGE: `-` / `+`, `[element` (inclusive) or `(element` (exclusive).
public enum RangeBound: Equatable, Sendable {
    case unbounded
    case inclusive([UInt8])
    case exclusive([UInt8])
}

/// When an EXPIRE-family command sets the time to live.
public enum ExpiryCondition: String, Equatable, Sendable {
    case always, nx = "NX", xx = "XX", gt = "GT", lt = "LT"
}

/// `AUTH`'s arguments as HELLO carries them.
public struct Credentials: Equatable, Sendable {
    public var user: String
    public var password: [UInt8]
    public init(user: String, password: [UInt8]) {
        self.user = user
        self.password = password
    }
}

/// What a BACKUP request asks for.
public enum BackupRequest: Equatable, Sendable {
    case start
    case read(id: Int, file: String, offset: Int, count: Int)
    case end(id: Int)
}

/// What a SLOWLOG request asks for.
public enum SlowlogRequest: Equatable, Sendable {
    /// The newest `count` entries (nil: 10, Redis' default; -1: all).
    case get(count: Int?)
    case len
    case reset
    case help
}

/// A parsed request. Parsing checks the grammar (arity, keywords, numbers); the engine checks the
/// values against the data (dimension, unknown collection, ...).
public enum Command: Equatable, Sendable {
    case ping(String?)
    case echo(String)
    case quit
    /// The password is kept as the bytes sent: compared as bytes, never as Unicode text.
    case auth(user: String?, password: [UInt8])
    case info(sections: [String])
    case shutdown
    case command(subcommand: String?)
    case configGet([String])
    /// `CONFIG SET name value [name value ...]`, as pairs flattened in order.
    case configSet([String])
    case configRewrite
    /// CONFIG RESETSTAT: zeroes INFO's counters, commandstats and latencystats.
    case configResetStat
    /// SLOWLOG GET [count] / LEN / RESET / HELP, as Redis.
    case slowlog(SlowlogRequest)
    /// BACKUP START / READ id file offset count / END id: an online backup (latentctl backup --host).
    case backup(BackupRequest)
    /// VERIFY: checks a checkpoint of the store in the background (INFO persistence shows the result).
    case verify
    /// COMPACT [key]: a manual RocksDB compaction of one collection's records or of the whole store.
    case compact(key: String?)
    /// REPLICAOF host port (SLAVEOF too); host nil: REPLICAOF NO ONE.
    case replicaOf(host: String?, port: Int)
    case role
    /// WAIT numreplicas timeout (milliseconds, 0 = no limit).
    case wait(replicas: Int, timeoutMillis: Int)
    /// REPLCONF option value ... (a replica's handshake and acknowledgements).
    case replconf([String])
    /// PSYNC replicationid offset: a replica asks for the stream (handled by the connection, not here).
    case psync(replicationId: String, offset: Int64)
    case client(subcommand: String, arguments: [String])
    case select(Int)
    /// `HELLO [protover [AUTH user password] [SETNAME name]]`.
    case hello(protocolVersion: Int?, auth: Credentials?, setName: String?)
    case dbsize
    /// `model`: MODEL's JSON (the training parameters `latentctl load` stores), decoded by the executor.
    case vcreate(key: String, dimension: Int, metric: Metric, index: IndexSpec, model: String? = nil)
    case vadd(VAddRequest)
    case vsim(VSimRequest)
    case vlinks(key: String, element: ElementID, withScores: Bool)
    case vrandmember(key: String, count: Int?)
    case vrange(key: String, start: RangeBound, end: RangeBound, count: Int?)
    // Keyspace commands over collections (each collection is a key of type vectorset).
    case del([String])
    case exists([String])
    case type(String)
    case rename(key: String, newKey: String, onlyIfAbsent: Bool)
    case keys(pattern: String)
    case scan(cursor: Int, match: String?, count: Int, type: String?)
    case flush
    /// EXPIRE / PEXPIRE / EXPIREAT / PEXPIREAT, in milliseconds: relative to now unless `absolute`.
    case expire(key: String, milliseconds: Int64, absolute: Bool, condition: ExpiryCondition)
    /// TTL / PTTL (`absolute` false) and EXPIRETIME / PEXPIRETIME; seconds unless `milliseconds`.
    case ttl(key: String, milliseconds: Bool, absolute: Bool)
    case persist(String)
    case memoryUsage(String)
    case objectEncoding(String)
    // Transactions.
    case multi
    case exec
    case discard
    case watch([String])
    case unwatch
    case vrem(key: String, element: ElementID)
    case vismember(key: String, element: ElementID)
    case vemb(key: String, element: ElementID, raw: Bool)
    case vcard(key: String)
    case vdim(key: String)
    case vsetattr(key: String, element: ElementID, json: [UInt8])
    case vgetattr(key: String, element: ElementID)
    case vinfo(key: String)
    case vlist
    case vdrop(key: String)
    /// Renames a collection, replacing one of the new name (as Redis' RENAME).
    case vrename(key: String, newKey: String)
    /// Stores the items a user element has seen (rated), for VSIM ... EXCLUDE-SEEN.
    case vsetseen(key: String, element: ElementID, items: [ElementID])
    /// VADDSEEN / VREMSEEN: add items to or remove them from a user's seen list.
    case vaddseen(key: String, element: ElementID, items: [ElementID])
    case vremseen(key: String, element: ElementID, items: [ElementID])
    /// VGETSEEN key user: the user's seen list.
    case vgetseen(key: String, element: ElementID)
    case vrecommend(VRecommendRequest)
    /// Index options not given are nil: the collection keeps its current kind and the defaults.
    case vrebuild(key: String, kind: IndexSpec.Kind?, m: Int?, efConstruction: Int?, nlist: Int?)

    /// The lower-case command name, for per-command statistics and error messages.
    public var name: String {
        switch self {
        case .ping: return "ping"
        case .echo: return "echo"
        case .quit: return "quit"
        case .auth: return "auth"
        case .info: return "info"
        case .shutdown: return "shutdown"
        case .command: return "command"
        case .configGet, .configSet, .configRewrite, .configResetStat: return "config"
        case .slowlog: return "slowlog"
        case .compact: return "compact"
        case .replicaOf: return "replicaof"
        case .role: return "role"
        case .wait: return "wait"
        case .replconf: return "replconf"
        case .psync: return "psync"
        case .verify: return "verify"
        case .backup: return "backup"
        case .client: return "client"
        case .select: return "select"
        case .hello: return "hello"
        case .dbsize: return "dbsize"
        case .vcreate: return "vcreate"
        case .vadd: return "vadd"
        case .vsim: return "vsim"
        case .vrem: return "vrem"
        case .vismember: return "vismember"
        case .vemb: return "vemb"
        case .vcard: return "vcard"
        case .vdim: return "vdim"
        case .vsetattr: return "vsetattr"
        case .vgetattr: return "vgetattr"
        case .vinfo: return "vinfo"
        case .vlist: return "vlist"
        case .vdrop: return "vdrop"
        case .vrename: return "vrename"
        case .vsetseen: return "vsetseen"
        case .vaddseen: return "vaddseen"
        case .vremseen: return "vremseen"
        case .vgetseen: return "vgetseen"
        case .vrecommend: return "vrecommend"
        case .vrebuild: return "vrebuild"
        case .vlinks: return "vlinks"
        case .vrandmember: return "vrandmember"
        case .vrange: return "vrange"
        case .del: return "del"
        case .exists: return "exists"
        case .type: return "type"
        case .rename: return "rename"
        case .keys: return "keys"
        case .scan: return "scan"
        case .flush: return "flushdb"
        case .expire: return "expire"
        case .ttl: return "ttl"
        case .persist: return "persist"
        case .memoryUsage: return "memory"
        case .objectEncoding: return "object"
        case .multi: return "multi"
        case .exec: return "exec"
        case .discard: return "discard"
        case .watch: return "watch"
        case .unwatch: return "unwatch"
        }
    }

    /// Whether the command changes stored data (and so needs the WAL policy applied before replying).
    public var isWrite: Bool {
        switch self {
        case .vcreate, .vadd, .vrem, .vsetattr, .vdrop, .vrebuild, .vrename, .vsetseen, .vaddseen, .vremseen, .del, .rename, .flush, .expire,
             .persist, .exec:
            return true
        default: return false
        }
    }
}

/// A request the grammar rejects; `message` follows `-ERR `.
public enum CommandError: Error, Equatable, CustomStringConvertible {
    case unknownCommand(String)
    case wrongArity(String)
    case syntax(String)

    public var message: String {
        switch self {
        case .unknownCommand(let name): return "unknown command '\(name.prefix(128))'"
        case .wrongArity(let name): return "wrong number of arguments for '\(name)' command"
        case .syntax(let m): return m
        }
    }

    public var description: String { message }
}

extension VSimRequest {
    /// What identifies a VSIM's ranking regardless of the page asked for: every field but COUNT and
    /// OFFSET, serialised with a tag and a length before each part (so no two requests share a key).
    /// The result cache keys rankings by it, so page 2 is served from page 1's cached list.
    public var rankingKey: [UInt8] {
        var out: [UInt8] = []
        func put(_ tag: UInt8, _ bytes: [UInt8]) {
            out.append(tag)
            withUnsafeBytes(of: UInt32(bytes.count).littleEndian) { out += $0 }
            out += bytes
        }
        func number<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
        func real(_ v: Double?) -> [UInt8] { v.map { number($0.bitPattern) } ?? [] }
        put(1, Array(key.utf8))
        switch input {
        case .vector(let v): put(2, v.flatMap { number($0.bitPattern) })
        case .element(let e, let from):
            put(3, e.bytes)
            if let from { put(4, Array(from.utf8)) }
        case .foldIn(let items, let weights):
            for item in items { put(5, item.bytes) }
            if let weights { put(6, weights.flatMap { number($0.bitPattern) }) }
        }
        put(7, [withScores ? 1 : 0, withAttributes ? 1 : 0, truth ? 1 : 0, excludeSeen ? 1 : 0])
        put(8, number(Int64(ef ?? -1)) + number(Int64(nprobe ?? -1)) + number(Int64(filterEF ?? -1)))
        put(9, real(epsilon))
        put(10, real(minScore))
        put(11, real(maxDistance))
        if let filter { put(12, Array(filter.source.utf8)) }
        if let seenOf {
            put(13, Array(seenOf.collection.utf8))
            put(14, seenOf.user.bytes)
        }
        for id in exclude { put(15, id.bytes) }
        return out
    }
}
