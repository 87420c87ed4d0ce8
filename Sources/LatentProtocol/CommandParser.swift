import LatentFilter
import LatentIndex
import LatentVectors
import NIOCore

/// Turns a request's arguments into a typed `Command`, or a `CommandError` that says what is wrong.
public enum CommandParser {
    public static func parse(_ args: [ByteBuffer]) throws -> Command {
        guard let first = args.first else { throw CommandError.syntax("empty request") }
        let name = String(buffer: first).lowercased()
        var a = Arguments(args: args, command: name)
        switch name {
        case "ping":
            try a.arity(1...2)
            return .ping(a.count == 2 ? a.string(1) : nil)
        case "echo":
            try a.arity(2...2)
            return .echo(a.string(1))
        case "quit":
            return .quit
        case "auth":
            try a.arity(2...3)
            return a.count == 2 ? .auth(user: nil, password: a.bytes(1)) : .auth(user: a.string(1), password: a.bytes(2))
        case "info":
            return .info(sections: (1..<a.count).map { a.string($0).lowercased() })
        case "shutdown":
            return .shutdown
        case "command":
            return .command(subcommand: a.count >= 2 ? a.string(1).lowercased() : nil)
        case "config":
            try a.arity(2...)
            switch a.string(1).lowercased() {
            case "get":
                try a.arity(3...)
                return .configGet((2..<a.count).map { a.string($0) })
            case "set":
                guard a.count >= 4, a.count % 2 == 0 else { throw CommandError.wrongArity("config|set") }
                return .configSet((2..<a.count).map { a.string($0) })
            case "rewrite":
                try a.arity(2...2)
                return .configRewrite
            case "resetstat":
                try a.arity(2...2)
                return .configResetStat
            default:
                throw CommandError.syntax("unknown CONFIG subcommand '\(a.string(1).prefix(64))': use GET, SET, REWRITE or RESETSTAT")
            }
        case "backup":
            try a.arity(2...)
            switch a.string(1).lowercased() {
            case "start":
                try a.arity(2...2)
                return .backup(.start)
            case "read":
                try a.arity(6...6)
                return .backup(.read(id: try a.integer(2, what: "BACKUP READ id", in: 1...Int.max), file: a.string(3),
                                     offset: try a.integer(4, what: "BACKUP READ offset", in: 0...Int.max),
                                     count: try a.integer(5, what: "BACKUP READ count", in: 1...Int.max)))
            case "end":
                try a.arity(3...3)
                return .backup(.end(id: try a.integer(2, what: "BACKUP END id", in: 1...Int.max)))
            default:
                throw CommandError.syntax("unknown BACKUP subcommand '\(a.string(1).prefix(64))': use START, READ id file offset count, or END id")
            }
        case "verify":
            try a.arity(1...1)
            return .verify
        case "compact":
            try a.arity(1...2)
            return .compact(key: a.count == 2 ? a.string(1) : nil)
        case "replicaof", "slaveof":
            try a.arity(3...3)
            if a.string(1).lowercased() == "no" && a.string(2).lowercased() == "one" { return .replicaOf(host: nil, port: 0) }
            return .replicaOf(host: a.string(1), port: try a.integer(2, what: "port", in: 1...65535))
        case "role":
            try a.arity(1...1)
            return .role
        case "wait":
            try a.arity(3...3)
            return .wait(replicas: try a.integer(1, what: "numreplicas", in: 0...Int(Int32.max)),
                         timeoutMillis: try a.integer(2, what: "timeout", in: 0...Int.max))
        case "replconf":
            // Option/value pairs, as Redis checks them.
            guard a.count % 2 == 1 else { throw CommandError.syntax("syntax error: REPLCONF takes option value pairs") }
            return .replconf((1..<a.count).map { a.string($0) })
        case "psync":
            try a.arity(3...3)
            return .psync(replicationId: a.string(1), offset: Int64(try a.integer(2, what: "PSYNC offset", in: -1...Int.max)))
        case "slowlog":
            try a.arity(2...)
            switch a.string(1).lowercased() {
            case "get":
                try a.arity(2...3)
                return .slowlog(.get(count: a.count == 3 ? try a.integer(2, what: "SLOWLOG GET count", in: -1...Int.max) : nil))
            case "len":
                try a.arity(2...2)
                return .slowlog(.len)
            case "reset":
                try a.arity(2...2)
                return .slowlog(.reset)
            case "help":
                try a.arity(2...2)
                return .slowlog(.help)
            default:
                throw CommandError.syntax("unknown SLOWLOG subcommand '\(a.string(1).prefix(64))': use GET [count], LEN, RESET or HELP")
            }
        case "client":
            try a.arity(2...)
            return .client(subcommand: a.string(1).lowercased(), arguments: (2..<a.count).map { a.string($0) })
        case "select":
            try a.arity(2...2)
            return .select(try a.integer(1, what: "database index"))
        case "hello":
            return try parseHello(a)
        case "dbsize":
            return .dbsize
        case "vcreate":
            return try parseVCreate(&a)
        case "vadd":
            return try parseVAdd(&a)
        case "vsim":
            return try parseVSim(&a)
        case "vrem", "vismember", "vemb", "vgetattr":
            try a.arity(3...(name == "vemb" ? 4 : 3))
            let (key, element) = (a.string(1), a.element(2))
            switch name {
            case "vrem": return .vrem(key: key, element: element)
            case "vismember": return .vismember(key: key, element: element)
            case "vemb":
                if a.count == 4 && a.string(3).uppercased() != "RAW" { throw CommandError.syntax("invalid option") }
                return .vemb(key: key, element: element, raw: a.count == 4)
            default: return .vgetattr(key: key, element: element)
            }
        case "vcard", "vdim", "vinfo", "vdrop":
            try a.arity(2...2)
            let key = a.string(1)
            switch name {
            case "vcard": return .vcard(key: key)
            case "vdim": return .vdim(key: key)
            case "vinfo": return .vinfo(key: key)
            default: return .vdrop(key: key)
            }
        case "vrename":
            try a.arity(3...3)
            return .vrename(key: a.string(1), newKey: a.string(2))
        case "vsetseen":
            try a.arity(3...)
            return .vsetseen(key: a.string(1), element: a.element(2), items: (3..<a.count).map { a.element($0) })
        case "vaddseen", "vremseen":
            try a.arity(4...)
            let items = (3..<a.count).map { a.element($0) }
            return name == "vaddseen" ? .vaddseen(key: a.string(1), element: a.element(2), items: items)
                : .vremseen(key: a.string(1), element: a.element(2), items: items)
        case "vgetseen":
            try a.arity(3...3)
            return .vgetseen(key: a.string(1), element: a.element(2))
        case "vrecommend":
            return try parseVRecommend(&a)
        case "vsetattr":
            try a.arity(4...4)
            return .vsetattr(key: a.string(1), element: a.element(2), json: a.bytes(3))
        case "vrebuild":
            try a.arity(2...)
            guard a.count % 2 == 0 else { throw CommandError.syntax("option \(a.string(a.count - 1).uppercased()) needs a value") }
            var kindGiven = false
            let spec = try parseIndexOptions(a, positions: Array(2..<a.count), base: .flat, command: "VREBUILD", also: "",
                                             kindGiven: &kindGiven)
            return .vrebuild(key: a.string(1), kind: kindGiven ? spec.kind : nil, m: spec.m,
                             efConstruction: spec.efConstruction, nlist: spec.nlist)
        case "vlist":
            try a.arity(1...1)
            return .vlist
        default:
            if let command = try parseKeyspace(name, &a) { return command }
            throw CommandError.unknownCommand(String(buffer: first))
        }
    }

    // VCREATE key DIM d [METRIC COSINE|L2|IP] [INDEX FLAT|HNSW|IVF] [M m] [EF_CONSTRUCTION n] [NLIST n] [MODEL json]
    static func parseVCreate(_ a: inout Arguments) throws -> Command {
        try a.arity(4...)
        let key = a.string(1)
        var dimension: Int?
        var metric = Metric.cosine
        var model: String?
        var i = 2
        var rest: [Int] = []
        while i < a.count {
            let option = a.string(i).uppercased()
            guard i + 1 < a.count else { throw CommandError.syntax("option \(option) needs a value") }
            let value = a.string(i + 1)
            switch option {
            case "DIM": dimension = try a.integer(i + 1, what: "DIM")
            case "METRIC":
                guard let m = Metric(rawValue: value.uppercased()) else {
                    throw CommandError.syntax("unknown METRIC '\(value)': use COSINE, L2 or IP")
                }
                metric = m
            case "MODEL": model = value
            default:
                rest += [i, i + 1]
            }
            i += 2
        }
        var kindGiven = false
        let index = try parseIndexOptions(a, positions: rest, base: .flat, command: "VCREATE",
                                          also: "DIM, METRIC, ", kindGiven: &kindGiven)
        guard let dimension else { throw CommandError.syntax("VCREATE needs DIM d") }
        return .vcreate(key: key, dimension: dimension, metric: metric, index: index, model: model)
    }

    /// INDEX / M / EF_CONSTRUCTION / NLIST pairs, shared by VCREATE and VREBUILD.
    static func parseIndexOptions(_ a: Arguments, positions: [Int], base: IndexSpec, command: String, also: String,
                                  kindGiven: inout Bool) throws -> IndexSpec {
        var index = base
        for j in stride(from: 0, to: positions.count, by: 2) {
            let i = positions[j]
            let value = a.string(i + 1)
            switch a.string(i).uppercased() {
            case "INDEX":
                guard let k = IndexSpec.Kind(rawValue: value.uppercased()) else {
                    throw CommandError.syntax("unknown INDEX '\(value)': use FLAT, HNSW or IVF")
                }
                index.kind = k
                kindGiven = true
            case "M": index.m = try a.integer(i + 1, what: "M", in: 2...512)
            case "EF_CONSTRUCTION": index.efConstruction = try a.integer(i + 1, what: "EF_CONSTRUCTION", in: 1...100_000)
            case "NLIST": index.nlist = try a.integer(i + 1, what: "NLIST", in: 1...1_000_000)
            default:
                throw CommandError.syntax("unknown \(command) option '\(a.string(i))': use \(also)INDEX, M, EF_CONSTRUCTION or NLIST")
            }
        }
        return index
    }

    // VADD key [REDUCE dim] (VALUES n v1 .. vn | FP32 blob) element [CAS] [NOQUANT|Q8|BIN] [EF n] [SETATTR json] [M m]
    // Errors as Redis words them (clients and their tests match on them).
    static func parseVAdd(_ a: inout Arguments) throws -> Command {
        try a.arity(4...)
        let key = a.string(1)
        var i = 2
        var reduce: Int?
        if a.string(i).uppercased() == "REDUCE" {
            guard i + 2 < a.count, let r = Int(a.string(i + 1)), r >= 1, r <= 4096 else {
                throw CommandError.syntax("invalid vector specification")
            }
            reduce = r
            i += 2
        }
        let vector: [Float]
        do {
            vector = try a.vector(at: &i)
        } catch let e as CommandError {
            // Redis' words first (clients match on them), then what exactly is wrong.
            throw CommandError.syntax("invalid vector specification: \(e.message)")
        }
        guard i < a.count else { throw CommandError.wrongArity("vadd") }
        var request = VAddRequest(key: key, vector: vector, element: a.element(i), reduce: reduce)
        i += 1
        while i < a.count {
            let option = a.string(i).uppercased()
            let hasValue = i + 1 < a.count
            switch option {
            case "CAS":
                request.cas = true
                i += 1
            case "NOQUANT", "Q8", "BIN":
                request.quantization = VAddRequest.Quantization(rawValue: option)
                i += 1
            case "EF" where hasValue:
                guard let ef = Int(a.string(i + 1)), ef > 0, ef <= 1_000_000 else { throw CommandError.syntax("invalid EF") }
                request.ef = ef
                i += 2
            case "M" where hasValue:
                guard let m = Int(a.string(i + 1)), m >= 4, m <= 4096 else { throw CommandError.syntax("invalid M") }
                request.m = m
                i += 2
            case "SETATTR" where hasValue:
                request.attributes = a.bytes(i + 1)
                i += 2
            default:
                throw CommandError.syntax("invalid option after element")
            }
        }
        if let reduce, reduce > vector.count {
            throw CommandError.syntax("REDUCE \(reduce) is larger than the vector's \(vector.count) components")
        }
        return .vadd(request)
    }

    // VSIM key (ELE element [FROM other] | VALUES n ... | FP32 blob | FOLDIN n item... [WEIGHTS w...]) [COUNT k] [WITHSCORES] [WITHATTRIBS]
    //      [EF ef] [NPROBE p] [TRUTH] [NOTHREAD] [EPSILON d] [FILTER expr] [FILTER-EF n] [EXCLUDE-SEEN]
    static func parseVSim(_ a: inout Arguments) throws -> Command {
        try a.arity(3...)
        let key = a.string(1)
        var i = 2
        let input: QueryInput
        if a.string(i).uppercased() == "ELE" {
            guard i + 1 < a.count else { throw CommandError.syntax("ELE needs an element") }
            let element = a.element(i + 1)
            i += 2
            var from: String?
            if i < a.count && a.string(i).uppercased() == "FROM" {
                guard i + 1 < a.count else { throw CommandError.syntax("FROM needs a collection") }
                from = a.string(i + 1)
                i += 2
            }
            input = .element(element, from: from)
        } else if a.string(i).uppercased() == "FOLDIN" {
            let n = i + 1 < a.count ? try a.integer(i + 1, what: "FOLDIN") : 0
            guard n >= 1 else { throw CommandError.syntax("FOLDIN needs a count of items >= 1 and the items: FOLDIN n item1 .. itemn") }
            guard n <= a.count - i - 2 else { throw CommandError.syntax("FOLDIN \(n) needs \(n) items; fewer were given") }
            let items = (0..<n).map { a.element(i + 2 + $0) }
            i += 2 + n
            var weights: [Float]?
            if i < a.count && a.string(i).uppercased() == "WEIGHTS" {
                guard n <= a.count - i - 1 else { throw CommandError.syntax("WEIGHTS needs one weight per FOLDIN item (\(n))") }
                weights = try (0..<n).map { k -> Float in
                    guard let w = Float(a.string(i + 1 + k)), w.isFinite, w >= 0 else {
                        throw CommandError.syntax("WEIGHTS: '\(a.string(i + 1 + k).prefix(32))' is not a finite number >= 0")
                    }
                    return w
                }
                i += 1 + n
            }
            input = .foldIn(items: items, weights: weights)
        } else {
            input = .vector(try a.vector(at: &i))
        }
        var request = VSimRequest(key: key, input: input)
        while i < a.count {
            let option = a.string(i).uppercased()
            switch option {
            case "WITHSCORES": request.withScores = true; i += 1
            case "WITHATTRIBS": request.withAttributes = true; i += 1
            case "TRUTH": request.truth = true; i += 1
            case "EXCLUDE-SEEN": request.excludeSeen = true; i += 1
            case "SEEN-OF":
                guard i + 2 < a.count else { throw CommandError.syntax("SEEN-OF needs a users collection and a user: SEEN-OF users u42") }
                request.seenOf = SeenOwner(collection: a.string(i + 1), user: a.element(i + 2))
                request.excludeSeen = true
                i += 3
            case "EXCLUDE":
                request.exclude += try a.counted(at: &i, what: "EXCLUDE")
            case "MINSCORE", "MAXDIST":
                guard i + 1 < a.count else { throw CommandError.syntax("option \(option) needs a value") }
                guard let x = Double(a.string(i + 1)), x.isFinite else {
                    throw CommandError.syntax("\(option) '\(a.string(i + 1).prefix(32))' is not a finite number")
                }
                if option == "MINSCORE" { request.minScore = x } else {
                    guard x >= 0 else { throw CommandError.syntax("MAXDIST \(x) is negative: a distance bound is >= 0") }
                    request.maxDistance = x
                }
                i += 2
            case "OFFSET":
                guard i + 1 < a.count else { throw CommandError.syntax("option OFFSET needs a value") }
                let v = try a.integer(i + 1, what: option)
                guard v >= 0 && v <= Self.maxOffset else { throw CommandError.syntax("OFFSET \(v) is out of range: use 0..\(Self.maxOffset)") }
                request.offset = v
                i += 2
            case "NOTHREAD": i += 1
            case "COUNT": request.count = try a.value(at: &i, option: option)
            case "EF": request.ef = try a.value(at: &i, option: option, in: 1...1_000_000)
            case "NPROBE": request.nprobe = try a.value(at: &i, option: option, in: 1...Int.max)
            case "EPSILON":
                guard i + 1 < a.count else { throw CommandError.syntax("option EPSILON needs a value") }
                guard let d = Double(a.string(i + 1)), d > 0, d.isFinite else { throw CommandError.syntax("invalid EPSILON") }
                request.epsilon = d
                i += 2
            case "FILTER": request.filter = try a.filter(at: &i)
            case "FILTER-EF":
                guard i + 1 < a.count else { throw CommandError.syntax("option FILTER-EF needs a value") }
                let v = try a.integer(i + 1, what: option)
                guard v >= 0 && v <= 1_000_000 else { throw CommandError.syntax("FILTER-EF \(v) is out of range: use 0..1000000 (0: the default)") }
                request.filterEF = v == 0 ? nil : v
                i += 2
            default:
                throw CommandError.syntax("unknown VSIM option '\(a.string(i))': use COUNT, OFFSET, WITHSCORES, WITHATTRIBS, EPSILON, MINSCORE, MAXDIST, EF, FILTER, FILTER-EF, NPROBE, TRUTH, NOTHREAD, EXCLUDE, EXCLUDE-SEEN or SEEN-OF")
            }
        }
        return .vsim(request)
    }

    /// The largest OFFSET: pages deeper than this are not what a similarity search is for.
    static let maxOffset = 100_000

    // VRECOMMEND key POSITIVE n id... [NEGATIVE m id...] [FROM collection] [STRATEGY AVERAGE|BEST] [COUNT k]
    //            [FILTER expr] [WITHSCORES] [WITHATTRIBS] [EF ef] [NPROBE p] [TRUTH]
    static func parseVRecommend(_ a: inout Arguments) throws -> Command {
        try a.arity(4...)
        var i = 2
        guard a.string(i).uppercased() == "POSITIVE" else {
            throw CommandError.syntax("VRECOMMEND needs POSITIVE n id... after the key: VRECOMMEND items POSITIVE 2 a b [NEGATIVE 1 c]")
        }
        var request = VRecommendRequest(key: a.string(1), positives: try a.counted(at: &i, what: "POSITIVE"))
        while i < a.count {
            let option = a.string(i).uppercased()
            switch option {
            case "NEGATIVE": request.negatives += try a.counted(at: &i, what: "NEGATIVE")
            case "WITHSCORES": request.withScores = true; i += 1
            case "WITHATTRIBS": request.withAttributes = true; i += 1
            case "TRUTH": request.truth = true; i += 1
            case "FROM":
                guard i + 1 < a.count else { throw CommandError.syntax("FROM needs a collection") }
                request.from = a.string(i + 1)
                i += 2
            case "STRATEGY":
                guard i + 1 < a.count, let s = VRecommendRequest.Strategy(rawValue: a.string(i + 1).uppercased()) else {
                    throw CommandError.syntax("STRATEGY needs AVERAGE or BEST")
                }
                request.strategy = s
                i += 2
            case "COUNT": request.count = try a.value(at: &i, option: option)
            case "EF": request.ef = try a.value(at: &i, option: option, in: 1...1_000_000)
            case "NPROBE": request.nprobe = try a.value(at: &i, option: option, in: 1...Int.max)
            case "FILTER": request.filter = try a.filter(at: &i)
            default:
                throw CommandError.syntax("unknown VRECOMMEND option '\(a.string(i))': use NEGATIVE, FROM, STRATEGY, COUNT, FILTER, WITHSCORES, WITHATTRIBS, EF, NPROBE or TRUTH")
            }
        }
        return .vrecommend(request)
    }
}

/// Positional access to a request's arguments with the checks every command needs.
struct Arguments {
    let args: [ByteBuffer]
    let command: String

    var count: Int { args.count }

    func string(_ i: Int) -> String { String(buffer: args[i]) }

    func bytes(_ i: Int) -> [UInt8] { Array(args[i].readableBytesView) }

    /// An element id: the argument's bytes as sent (binary-safe, never decoded as text).
    func element(_ i: Int) -> ElementID { ElementID(bytes: bytes(i)) }

    /// The integer after the option at `i` (COUNT, EF, NPROBE), checked against `range`; `i` moves past it.
    func value(at i: inout Int, option: String, in range: ClosedRange<Int>? = nil) throws -> Int {
        guard i + 1 < count else { throw CommandError.syntax("option \(option) needs a value") }
        let v = try integer(i + 1, what: option)
        if let range, !range.contains(v) {
            let shown = range.upperBound == Int.max ? "\(range.lowerBound) or more" : "\(range.lowerBound)..\(range.upperBound)"
            throw CommandError.syntax("\(option) \(v) is out of range: use \(shown)")
        }
        i += 2
        return v
    }

    /// The FILTER expression after the option at `i`, compiled; `i` moves past it.
    func filter(at i: inout Int) throws -> FilterExpression {
        guard i + 1 < count else { throw CommandError.syntax("option FILTER needs an expression") }
        do {
            let expression = try FilterExpression(string(i + 1))
            i += 2
            return expression
        } catch let e as FilterSyntaxError {
            throw CommandError.syntax(e.description)
        }
    }

    /// `WORD n id1 .. idn` at `i` (i points at WORD): the n ids (n >= 1); `i` moves past them.
    func counted(at i: inout Int, what: String) throws -> [ElementID] {
        let n = i + 1 < count ? try integer(i + 1, what: what) : 0
        guard n >= 1 else { throw CommandError.syntax("\(what) needs a count >= 1 and the ids: \(what) n id1 .. idn") }
        guard n <= count - i - 2 else { throw CommandError.syntax("\(what) \(n) needs \(n) ids; fewer were given") }
        let ids = (0..<n).map { element(i + 2 + $0) }
        i += 2 + n
        return ids
    }

    func arity(_ range: ClosedRange<Int>) throws {
        if !range.contains(args.count) { throw CommandError.wrongArity(command) }
    }

    func arity(_ range: PartialRangeFrom<Int>) throws {
        if !range.contains(args.count) { throw CommandError.wrongArity(command) }
    }

    func integer(_ i: Int, what: String, in range: ClosedRange<Int>? = nil) throws -> Int {
        let s = string(i)
        guard let v = Int(s) else { throw CommandError.syntax("\(what) must be an integer, got '\(s.prefix(64))'") }
        if let range, !range.contains(v) {
            throw CommandError.syntax("\(what) \(v) is out of range: use \(range.lowerBound)..\(range.upperBound)")
        }
        return v
    }

    /// Reads `VALUES n v1 .. vn` or `FP32 blob` starting at `i`, leaving `i` after it.
    func vector(at i: inout Int) throws -> [Float] {
        let form = string(i).uppercased()
        switch form {
        case "VALUES":
            guard i + 1 < count else { throw CommandError.syntax("VALUES needs a count and that many numbers") }
            let n = try integer(i + 1, what: "VALUES count", in: 1...4096)
            guard i + 2 + n <= count else {
                throw CommandError.syntax("VALUES \(n) needs \(n) numbers, got \(count - i - 2)")
            }
            var v = [Float]()
            v.reserveCapacity(n)
            for j in 0..<n {
                let s = string(i + 2 + j)
                guard let x = Float(s) else {
                    throw CommandError.syntax("vector component \(j) '\(s.prefix(64))' is not a number")
                }
                v.append(x)
            }
            i += 2 + n
            return v
        case "FP32":
            guard i + 1 < count else { throw CommandError.syntax("FP32 needs a blob of little-endian float32 values") }
            let blob = args[i + 1]
            guard blob.readableBytes > 0 && blob.readableBytes % 4 == 0 else {
                throw CommandError.syntax("FP32 blob of \(blob.readableBytes) bytes is not a whole number of float32 values")
            }
            let n = blob.readableBytes / 4
            let v = [Float](unsafeUninitializedCapacity: n) { out, initialized in
                blob.withUnsafeReadableBytes { raw in
                    for j in 0..<n {
                        out[j] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: j * 4, as: UInt32.self)))
                    }
                }
                initialized = n
            }
            i += 2
            return v
        default:
            throw CommandError.syntax("expected VALUES n v1 .. vn or FP32 blob, got '\(string(i).prefix(64))'")
        }
    }
}

extension CommandParser {
    /// `HELLO [protover [AUTH username password] [SETNAME clientname]]`, as Redis 6+ parses it.
    static func parseHello(_ a: Arguments) throws -> Command {
        guard a.count >= 2 else { return .hello(protocolVersion: nil, auth: nil, setName: nil) }
        let version = try a.integer(1, what: "protocol version")
        var auth: Credentials?
        var setName: String?
        var i = 2
        while i < a.count {
            switch a.string(i).uppercased() {
            case "AUTH" where i + 2 < a.count:
                auth = Credentials(user: a.string(i + 1), password: a.bytes(i + 2))
                i += 3
            case "SETNAME" where i + 1 < a.count:
                setName = a.string(i + 1)
                i += 2
            default:
                throw CommandError.syntax("syntax error in HELLO option '\(a.string(i).prefix(64))': use HELLO protover [AUTH username password] [SETNAME clientname]")
            }
        }
        return .hello(protocolVersion: version, auth: auth, setName: setName)
    }
}
