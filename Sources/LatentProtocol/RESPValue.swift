import NIOCore

/// A RESP2 reply.
public enum RESPValue: Equatable, Sendable {
    case simpleString(String)
    /// The whole error line after '-', e.g. "ERR unknown command 'x'" or "NOAUTH Authentication required.".
    case error(String)
    case integer(Int)
    case bulkString(ByteBuffer)
    case null
    case array([RESPValue])
    case nullArray

    public static let ok = RESPValue.simpleString("OK")

    public var isError: Bool {
        if case .error = self { return true }
        return false
    }

    public static func bulk(_ s: String) -> RESPValue { .bulkString(ByteBuffer(string: s)) }
    public static func bulk(bytes: [UInt8]) -> RESPValue { .bulkString(ByteBuffer(bytes: bytes)) }

    /// An "ERR ..." error reply.
    public static func err(_ message: String) -> RESPValue { .error("ERR " + message) }

    /// Appends the RESP2 encoding to `buffer`.
    public func write(into buffer: inout ByteBuffer) {
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
            buffer.writeStaticString("$-1\r\n")
        case .array(let items):
            buffer.writeInteger(UInt8(ascii: "*"))
            buffer.writeString(String(items.count))
            buffer.writeStaticString("\r\n")
            for item in items { item.write(into: &buffer) }
        case .nullArray:
            buffer.writeStaticString("*-1\r\n")
        }
    }

    /// Simple strings and errors cannot carry line breaks; they would end the reply early.
    static func singleLine(_ s: String) -> String {
        String(String.UnicodeScalarView(s.unicodeScalars.map { $0 == "\r" || $0 == "\n" ? " " : $0 }))
    }
}

/// Encodes RESP replies written to the channel.
public struct RESPEncoder: MessageToByteEncoder {
    public typealias OutboundIn = RESPValue

    public init() {}

    public func encode(data: RESPValue, out: inout ByteBuffer) throws {
        data.write(into: &out)
    }
}
