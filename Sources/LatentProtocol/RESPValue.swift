import NIOCore

/// The protocol a connection speaks, chosen by `HELLO 2|3` (RESP2 until then, as Redis).
public enum RESPVersion: Int, Sendable, Equatable {
    case resp2 = 2
    case resp3 = 3
}

/// A reply, in the vocabulary of RESP3. RESP3's own types (maps, sets, doubles, booleans, verbatim
/// text) are written in their RESP2 form on a RESP2 connection, as Redis writes them: a map as a flat
/// array of key, value, ..., a set as an array, a double as a bulk string, a boolean as 1 or 0, and
/// verbatim text as a bulk string. So one reply value serves both protocols (and the result cache).
public enum RESPValue: Equatable, Sendable {
    case simpleString(String)
    /// The whole error line after '-', e.g. "ERR unknown command 'x'" or "NOAUTH Authentication required.".
    case error(String)
    case integer(Int)
    case bulkString(ByteBuffer)
    /// RESP2 `$-1`, RESP3 `_`.
    case null
    case array([RESPValue])
    /// RESP2 `*-1`, RESP3 `_` (EXEC aborted by WATCH, VINFO of a missing key).
    case nullArray
    /// Key, value, key, value, ... (an even count).
    case map([RESPValue])
    case set([RESPValue])
    case double(Double)
    case boolean(Bool)
    /// An array in RESP3; in RESP2 its items stand one after another in the enclosing reply, as Redis
    /// writes VSIM ... WITHSCORES WITHATTRIBS: element -> [score, attributes] in RESP3, a flat
    /// element, score, attributes in RESP2.
    case group([RESPValue])
    /// Text with a three-letter format (`txt`), as INFO and CLIENT LIST reply in RESP3.
    case verbatim(String)

    public static let ok = RESPValue.simpleString("OK")

    public var isError: Bool {
        if case .error = self { return true }
        return false
    }

    /// An error reply's code, its first word ("ERR", "NOAUTH", ...); nil for other replies.
    public var errorCode: String? {
        guard case .error(let line) = self else { return nil }
        return String(line.prefix { $0 != " " })
    }

    public static func bulk(_ s: String) -> RESPValue { .bulkString(ByteBuffer(string: s)) }
    public static func bulk(bytes: [UInt8]) -> RESPValue { .bulkString(ByteBuffer(bytes: bytes)) }

    /// An "ERR ..." error reply.
    public static func err(_ message: String) -> RESPValue { .error("ERR " + message) }

    /// A float32 result (a score, a vector component) as a double that prints as the float's shortest
    /// text: a client sees 4.32, not 4.320000171661377, and parses back the same float.
    public static func double(float f: Float) -> RESPValue {
        .double(f.isFinite ? (Double(f.description) ?? Double(f)) : Double(f))
    }

    /// A map from (key, value) pairs.
    public static func map(_ pairs: [(String, RESPValue)]) -> RESPValue {
        var flat: [RESPValue] = []
        flat.reserveCapacity(pairs.count * 2)
        for (k, v) in pairs { flat.append(.bulk(k)); flat.append(v) }
        return .map(flat)
    }

    /// Appends the encoding in `version` to `buffer`.
    public func write(into buffer: inout ByteBuffer, version: RESPVersion = .resp2) {
        switch self {
        case .simpleString(let s):
            buffer.writeInteger(UInt8(ascii: "+"))
            buffer.writeString(RESPValue.singleLine(s))
            buffer.writeStaticString("\r\n")
        case .error(let s):
            buffer.writeInteger(UInt8(ascii: "-"))
            buffer.writeString(RESPValue.singleLine(s))
            buffer.writeStaticString("\r\n")
        case .integer(let i):
            buffer.writeInteger(UInt8(ascii: ":"))
            buffer.writeString(String(i))
            buffer.writeStaticString("\r\n")
        case .bulkString(let b):
            buffer.writeInteger(UInt8(ascii: "$"))
            buffer.writeString(String(b.readableBytes))
            buffer.writeStaticString("\r\n")
            buffer.writeImmutableBuffer(b)
            buffer.writeStaticString("\r\n")
        case .null:
            if version == .resp3 { buffer.writeStaticString("_\r\n") } else { buffer.writeStaticString("$-1\r\n") }
        case .nullArray:
            if version == .resp3 { buffer.writeStaticString("_\r\n") } else { buffer.writeStaticString("*-1\r\n") }
        case .array(let items):
            RESPValue.writeAggregate("*", items.count, items, into: &buffer, version: version)
        case .group(let items):
            // Only a standalone group gets here in RESP2 (enclosing aggregates splice it): an array.
            RESPValue.writeAggregate("*", items.count, items, into: &buffer, version: version)
        case .set(let items):
            RESPValue.writeAggregate(version == .resp3 ? "~" : "*", items.count, items, into: &buffer, version: version)
        case .map(let flat):
            if version == .resp3 {
                RESPValue.writeAggregate("%", flat.count / 2, flat, into: &buffer, version: version)
            } else {
                RESPValue.writeAggregate("*", flat.count, flat, into: &buffer, version: version)
            }
        case .double(let d):
            if version == .resp3 {
                buffer.writeInteger(UInt8(ascii: ","))
                buffer.writeString(RESPValue.format(d))
                buffer.writeStaticString("\r\n")
            } else {
                RESPValue.bulk(RESPValue.format(d)).write(into: &buffer, version: version)
            }
        case .boolean(let b):
            if version == .resp3 {
                buffer.writeStaticString(b ? "#t\r\n" : "#f\r\n")
            } else {
                buffer.writeStaticString(b ? ":1\r\n" : ":0\r\n")
            }
        case .verbatim(let text):
            if version == .resp3 {
                buffer.writeInteger(UInt8(ascii: "="))
                buffer.writeString(String(text.utf8.count + 4))
                buffer.writeStaticString("\r\ntxt:")
                buffer.writeString(text)
                buffer.writeStaticString("\r\n")
            } else {
                RESPValue.bulk(text).write(into: &buffer, version: version)
            }
        }
    }

    private static func writeAggregate(_ type: Character, _ count: Int, _ items: [RESPValue], into buffer: inout ByteBuffer,
                                       version: RESPVersion) {
        var count = count
        if version == .resp2 {
            for case .group(let inner) in items { count += inner.count - 1 }
        }
        buffer.writeInteger(type.asciiValue ?? UInt8(ascii: "*"))
        buffer.writeString(String(count))
        buffer.writeStaticString("\r\n")
        for item in items {
            if version == .resp2, case .group(let inner) = item {
                for x in inner { x.write(into: &buffer, version: version) }
            } else {
                item.write(into: &buffer, version: version)
            }
        }
    }

    /// A double as Redis prints it: whole numbers without a fraction, `inf`/`-inf`/`nan` spelled out,
    /// otherwise the shortest text that reads back as the same value.
    public static func format(_ x: Double) -> String {
        if x.isNaN { return "nan" }
        if x.isInfinite { return x < 0 ? "-inf" : "inf" }
        if x == x.rounded(), abs(x) < 1e15 { return String(Int(x)) }
        return String(x)
    }

    /// Simple strings and errors cannot carry line breaks; they would end the reply early.
    static func singleLine(_ s: String) -> String {
        String(String.UnicodeScalarView(s.unicodeScalars.map { $0 == "\r" || $0 == "\n" ? " " : $0 }))
    }
}

/// Encodes RESP2 replies written to a channel (tests and tools; the server encodes on its workers).
public struct RESPEncoder: MessageToByteEncoder {
    public typealias OutboundIn = RESPValue
    public let version: RESPVersion

    public init(version: RESPVersion = .resp2) { self.version = version }

    public func encode(data: RESPValue, out: inout ByteBuffer) throws {
        data.write(into: &out, version: version)
    }
}
