import Foundation

/// A top-level attribute value as filters see it (Redis' fastjson subset): numbers, strings, `true` and
/// `false` as 1 and 0, `null`, arrays of those (nested arrays allowed). Objects, and arrays holding one,
/// are `unsupported`: a selector naming such a field fails, as in Redis.
public indirect enum AttributeValue: Equatable, Sendable {
    case number(Double)
    case string([UInt8])
    case null
    case array([AttributeValue])
    case unsupported
}

/// Reads the top-level fields of an element's attributes. Attributes that are not a JSON object (Redis
/// stores any string) have no fields. The first occurrence of a repeated key wins, as in Redis.
public enum AttributeJSON {
    /// The fields, in document order, or nil when `bytes` is not one well-formed JSON object.
    public static func fields(_ bytes: [UInt8]) -> [(String, AttributeValue)]? {
        var reader = Reader(bytes: bytes)
        return try? reader.object()
    }

    private struct Malformed: Error {}

    private struct Reader {
        let bytes: [UInt8]
        var at = 0
        /// Nesting bound: attributes are user input and this reader recurses.
        var depth = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        mutating func skipSpace() {
            while at < bytes.count, bytes[at] == 32 || bytes[at] == 9 || bytes[at] == 10 || bytes[at] == 13 { at += 1 }
        }

        mutating func expect(_ c: UInt8) throws {
            skipSpace()
            guard at < bytes.count, bytes[at] == c else { throw Malformed() }
            at += 1
        }

        mutating func object() throws -> [(String, AttributeValue)] {
            try expect(123)
            var out: [(String, AttributeValue)] = []
            var seen = Set<String>()
            skipSpace()
            if at < bytes.count, bytes[at] == 125 {
                at += 1
            } else {
                while true {
                    skipSpace()
                    let key = String(decoding: try string(), as: UTF8.self)
                    try expect(58)
                    let v = try value()
                    if seen.insert(key).inserted { out.append((key, v)) }
                    skipSpace()
                    guard at < bytes.count else { throw Malformed() }
                    if bytes[at] == 44 { at += 1; continue }
                    if bytes[at] == 125 { at += 1; break }
                    throw Malformed()
                }
            }
            skipSpace()
            guard at == bytes.count else { throw Malformed() }
            return out
        }

        mutating func value() throws -> AttributeValue {
            depth += 1
            defer { depth -= 1 }
            guard depth <= 64 else { throw Malformed() }
            skipSpace()
            guard at < bytes.count else { throw Malformed() }
            switch bytes[at] {
            case 34: return .string(try string())
            case 123:
                try skipNested()
                return .unsupported
            case 91:
                at += 1
                var items: [AttributeValue] = []
                var unsupported = false
                skipSpace()
                if at < bytes.count, bytes[at] == 93 { at += 1; return .array([]) }
                while true {
                    let v = try value()
                    if v == .unsupported { unsupported = true }
                    items.append(v)
                    skipSpace()
                    guard at < bytes.count else { throw Malformed() }
                    if bytes[at] == 44 { at += 1; continue }
                    if bytes[at] == 93 { at += 1; break }
                    throw Malformed()
                }
                return unsupported ? .unsupported : .array(items)
            case 116: try literal("true"); return .number(1)
            case 102: try literal("false"); return .number(0)
            case 110: try literal("null"); return .null
            default: return .number(try number())
            }
        }

        mutating func literal(_ word: String) throws {
            let w = Array(word.utf8)
            guard at + w.count <= bytes.count, Array(bytes[at..<at + w.count]) == w else { throw Malformed() }
            at += w.count
        }

        mutating func number() throws -> Double {
            let start = at
            while at < bytes.count, (bytes[at] >= 48 && bytes[at] <= 57) || bytes[at] == 45 || bytes[at] == 43
                    || bytes[at] == 46 || bytes[at] == 101 || bytes[at] == 69 { at += 1 }
            guard at > start, let v = Double(String(decoding: bytes[start..<at], as: UTF8.self)) else { throw Malformed() }
            return v
        }

        /// A JSON string with its escapes decoded (`\uXXXX` included, surrogate pairs joined).
        mutating func string() throws -> [UInt8] {
            guard at < bytes.count, bytes[at] == 34 else { throw Malformed() }
            at += 1
            var out: [UInt8] = []
            while at < bytes.count {
                let c = bytes[at]
                at += 1
                if c == 34 { return out }
                guard c == 92 else { out.append(c); continue }
                guard at < bytes.count else { throw Malformed() }
                let e = bytes[at]
                at += 1
                switch e {
                case 110: out.append(10)
                case 116: out.append(9)
                case 114: out.append(13)
                case 98: out.append(8)
                case 102: out.append(12)
                case 117:
                    var scalar = try hex4()
                    if (0xD800..<0xDC00).contains(scalar), at + 6 <= bytes.count, bytes[at] == 92, bytes[at + 1] == 117 {
                        at += 2
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw Malformed() }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let u = Unicode.Scalar(scalar) else { throw Malformed() }
                    out.append(contentsOf: Array(String(Character(u)).utf8))
                default: out.append(e)
                }
            }
            throw Malformed()
        }

        mutating func hex4() throws -> UInt32 {
            guard at + 4 <= bytes.count, let v = UInt32(String(decoding: bytes[at..<at + 4], as: UTF8.self), radix: 16) else {
                throw Malformed()
            }
            at += 4
            return v
        }

        /// Skips an object or array value (strings inside may hold brackets).
        mutating func skipNested() throws {
            var level = 0
            while at < bytes.count {
                let c = bytes[at]
                if c == 34 { _ = try string(); continue }
                at += 1
                if c == 123 || c == 91 { level += 1 } else if c == 125 || c == 93 {
                    level -= 1
                    if level == 0 { return }
                }
            }
            throw Malformed()
        }
    }
}
