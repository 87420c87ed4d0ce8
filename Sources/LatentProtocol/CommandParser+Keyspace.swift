import LatentIndex
import LatentVectors
import NIOCore

/// Redis' keyspace, transaction and vector-set reflection commands (errors as Redis words them).
extension CommandParser {
    /// The commands of this file, or nil when `name` is none of them.
    static func parseKeyspace(_ name: String, _ a: inout Arguments) throws -> Command? {
        switch name {
        case "del", "unlink":
            try a.arity(2...)
            return .del((1..<a.count).map { a.string($0) })
        case "exists":
            try a.arity(2...)
            return .exists((1..<a.count).map { a.string($0) })
        case "type":
            try a.arity(2...2)
            return .type(a.string(1))
        case "rename", "renamenx":
            try a.arity(3...3)
            return .rename(key: a.string(1), newKey: a.string(2), onlyIfAbsent: name == "renamenx")
        case "keys":
            try a.arity(2...2)
            return .keys(pattern: a.string(1))
        case "scan":
            return try parseScan(a)
        case "flushdb", "flushall":
            try a.arity(1...2)
            if a.count == 2, !["ASYNC", "SYNC"].contains(a.string(1).uppercased()) { throw CommandError.syntax("syntax error") }
            return .flush
        case "expire", "pexpire", "expireat", "pexpireat":
            try a.arity(3...4)
            guard let value = Int64(a.string(2)) else { throw CommandError.syntax("value is not an integer or out of range") }
            let millis = name.hasPrefix("p")
            let (scaled, overflow) = value.multipliedReportingOverflow(by: millis ? 1 : 1000)
            guard !overflow else { throw CommandError.syntax("invalid expire time in '\(name)' command") }
            var condition = ExpiryCondition.always
            if a.count == 4 {
                guard let c = ExpiryCondition(rawValue: a.string(3).uppercased()), c != .always else {
                    throw CommandError.syntax("Unsupported option \(a.string(3).prefix(64))")
                }
                condition = c
            }
            return .expire(key: a.string(1), milliseconds: scaled, absolute: name.hasSuffix("at"), condition: condition)
        case "ttl", "pttl", "expiretime", "pexpiretime":
            try a.arity(2...2)
            return .ttl(key: a.string(1), milliseconds: name.hasPrefix("p"), absolute: name.hasSuffix("time"))
        case "persist":
            try a.arity(2...2)
            return .persist(a.string(1))
        case "memory":
            try a.arity(2...)
            guard a.string(1).uppercased() == "USAGE" else {
                throw CommandError.syntax("unknown subcommand '\(a.string(1).prefix(64))'. Try MEMORY USAGE key.")
            }
            // MEMORY USAGE key [SAMPLES n]: latentd counts exactly, so SAMPLES is accepted and not needed.
            guard a.count == 3 || (a.count == 5 && a.string(3).uppercased() == "SAMPLES") else { throw CommandError.syntax("syntax error") }
            if a.count == 5 { _ = try a.integer(4, what: "SAMPLES") }
            return .memoryUsage(a.string(2))
        case "object":
            try a.arity(2...)
            guard a.string(1).uppercased() == "ENCODING" else {
                throw CommandError.syntax("unknown subcommand '\(a.string(1).prefix(64))'. Try OBJECT ENCODING key.")
            }
            guard a.count == 3 else { throw CommandError.wrongArity("object|encoding") }
            return .objectEncoding(a.string(2))
        case "multi":
            try a.arity(1...1)
            return .multi
        case "exec":
            try a.arity(1...1)
            return .exec
        case "discard":
            try a.arity(1...1)
            return .discard
        case "watch":
            try a.arity(2...)
            return .watch((1..<a.count).map { a.string($0) })
        case "unwatch":
            try a.arity(1...1)
            return .unwatch
        case "vlinks":
            try a.arity(3...4)
            if a.count == 4 && a.string(3).uppercased() != "WITHSCORES" { throw CommandError.wrongArity("vlinks") }
            return .vlinks(key: a.string(1), element: a.element(2), withScores: a.count == 4)
        case "vrandmember":
            try a.arity(2...3)
            guard a.count == 3 else { return .vrandmember(key: a.string(1), count: nil) }
            guard let n = Int(a.string(2)) else { throw CommandError.syntax("COUNT value is not an integer") }
            return .vrandmember(key: a.string(1), count: n)
        case "vrange":
            try a.arity(4...5)
            var count: Int?
            if a.count == 5 {
                guard let n = Int(a.string(4)) else { throw CommandError.syntax("invalid COUNT value") }
                count = n < 0 ? nil : n
            }
            return .vrange(key: a.string(1), start: try rangeBound(a, 2, open: "-"), end: try rangeBound(a, 3, open: "+"),
                           count: count)
        default:
            return nil
        }
    }

    static func rangeBound(_ a: Arguments, _ i: Int, open: String) throws -> RangeBound {
        let b = a.bytes(i)
        if b == Array(open.utf8) { return .unbounded }
        switch b.first {
        case UInt8(ascii: "["): return .inclusive(Array(b.dropFirst()))
        case UInt8(ascii: "("): return .exclusive(Array(b.dropFirst()))
        default:
            throw CommandError.syntax("invalid range '\(a.string(i).prefix(64))': use -, +, [element or (element")
        }
    }

    /// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`.
    static func parseScan(_ a: Arguments) throws -> Command {
        try a.arity(2...)
        guard let cursor = Int(a.string(1)), cursor >= 0 else { throw CommandError.syntax("invalid cursor") }
        var match: String?
        var count = 10
        var type: String?
        var i = 2
        while i < a.count {
            guard i + 1 < a.count else { throw CommandError.syntax("syntax error") }
            switch a.string(i).uppercased() {
            case "MATCH": match = a.string(i + 1)
            case "COUNT":
                guard let n = Int(a.string(i + 1)), n >= 1 else { throw CommandError.syntax("value is out of range, must be positive") }
                count = n
            case "TYPE": type = a.string(i + 1).lowercased()
            default: throw CommandError.syntax("syntax error")
            }
            i += 2
        }
        return .scan(cursor: cursor, match: match, count: count, type: type)
    }
}
