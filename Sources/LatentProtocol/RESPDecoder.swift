import NIOConcurrencyHelpers
import NIOCore

/// A request that breaks the protocol. The connection that sent it is answered
/// `-ERR Protocol error: <message>` and closed, as Redis does.
public struct RESPProtocolError: Error, Equatable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { "Protocol error: \(message)" }
}

public struct RESPDecoderLimits: Sendable {
    /// Longest inline request line (and longest `*N` / `$N` header line).
    public var maxInlineBytes: Int
    /// Largest single bulk string.
    public var maxBulkBytes: Int
    /// Most arguments in one multibulk request.
    public var maxArguments: Int

    /// Limits for a connection that has not authenticated while a password is set (Redis' answer to
    /// CVE-2021-32675): at most 10 arguments, each bulk and inline line at most 16 KiB, so an unknown
    /// peer can never make the server hold more than a few KiB on its behalf.
    public var unauthenticatedMaxArguments: Int
    public var unauthenticatedMaxBulkBytes: Int
    /// Most bytes of one request still being received (its arguments so far plus unparsed input):
    /// `client-query-buffer-limit`.
    public var maxQueryBufferBytes = 1 << 30

    public init(maxInlineBytes: Int = 64 * 1024, maxBulkBytes: Int = 512 * 1024 * 1024, maxArguments: Int = 1024 * 1024,
                unauthenticatedMaxArguments: Int = 10, unauthenticatedMaxBulkBytes: Int = 16 * 1024) {
        self.maxInlineBytes = maxInlineBytes
        self.maxBulkBytes = maxBulkBytes
        self.maxArguments = maxArguments
        self.unauthenticatedMaxArguments = unauthenticatedMaxArguments
        self.unauthenticatedMaxBulkBytes = unauthenticatedMaxBulkBytes
    }

    /// Largest value accepted for `maxBulkBytes` (`--proto-max-bulk-len`): far below Int.max, so a length
    /// plus its header and CRLF can never overflow, and within what one ByteBuffer can hold.
    public static let largestBulkBytes = Int(UInt32.max) - 1024
}

/// Whether the connection's peer has authenticated: read by the decoder on the event loop, set by AUTH
/// and HELLO on a worker thread. Guarded by `lock`.
public final class AuthenticationState: @unchecked Sendable {
    private let lock = NIOLock()
    private var value: Bool

    public init(authenticated: Bool) { value = authenticated }

    public var isAuthenticated: Bool {
        get { lock.withLock { value } }
        set { lock.withLock { value = newValue } }
    }
}

/// Turns bytes into requests: each request is its arguments as byte buffers.
///
/// Two framings share one stream, told apart by the first byte as Redis does: `*` starts a RESP
/// array of bulk strings (what redis-cli, redis-benchmark and client libraries send); anything else is
/// an inline line of space-separated words with optional quotes (what people type into nc).
/// A multibulk request is consumed argument by argument, so a large request arriving in many reads is
/// parsed once, not again on every read.
public struct RESPDecoder: ByteToMessageDecoder {
    public typealias InboundOut = [ByteBuffer]

    public let limits: RESPDecoderLimits
    /// When set and not authenticated, the unauthenticated limits apply.
    private let authentication: AuthenticationState?
    /// Arguments of a multibulk request still arriving, and how many are still to come.
    private var partial: [ByteBuffer] = []
    private var partialBytes = 0
    /// How many bytes of an inline line still arriving have been checked already.
    private var inlineScanned = 0
    private var remaining = 0

    public init(limits: RESPDecoderLimits = RESPDecoderLimits(), authentication: AuthenticationState? = nil) {
        self.limits = limits
        self.authentication = authentication
    }

    private var unauthenticated: Bool { authentication.map { !$0.isAuthenticated } ?? false }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let request = try next(&buffer) else { return .needMoreData }
        if let request = request { context.fireChannelRead(wrapInboundOut(request)) }
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        // A request cut off by the peer closing is dropped: there is nobody left to answer.
        while let request = try next(&buffer) {
            if let request { context.fireChannelRead(wrapInboundOut(request)) }
        }
        return .needMoreData
    }

    /// The next framing unit: nil when more bytes are needed; `.some(nil)` for a unit that carries no
    /// request (an empty line, `*0`); otherwise a request. Exposed for tests and tools.
    public mutating func next(_ buffer: inout ByteBuffer) throws -> [ByteBuffer]?? {
        // Subtraction, not addition: both sides are non-negative and the limit is at most 2^40.
        if buffer.readableBytes > limits.maxQueryBufferBytes - min(partialBytes, limits.maxQueryBufferBytes) {
            throw RESPProtocolError("query buffer limit of \(limits.maxQueryBufferBytes) bytes exceeded (client-query-buffer-limit)")
        }
        if remaining > 0 { return try continueMultibulk(&buffer) }
        guard let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return nil }
        if first == UInt8(ascii: "*") { return try startMultibulk(&buffer) }
        return try inline(&buffer)
    }

    // MARK: Multibulk

    /// Reads a header line such as `*3` or `$5` (without CR LF) at the reader index, or nil if incomplete.
    /// The value is nil when the line is not a decimal integer that fits in an Int (checked arithmetic:
    /// no byte sequence can trap here).
    private func headerLine(_ buffer: ByteBuffer, tooBig: String) throws -> (value: Int?, length: Int)? {
        let view = buffer.readableBytesView
        guard let cr = view.firstIndex(of: UInt8(ascii: "\r")) else {
            if view.count > limits.maxInlineBytes { throw RESPProtocolError(tooBig) }
            return nil
        }
        let lineLength = cr - view.startIndex
        if lineLength > limits.maxInlineBytes { throw RESPProtocolError(tooBig) }
        guard view.count - lineLength >= 2 else { return nil }
        return (Self.parseInteger(view[(view.startIndex + 1)..<cr], crlf: view[cr + 1] == UInt8(ascii: "\n")), lineLength + 2)
    }

    /// The checked integer parser, for tests.
    public static func parseIntegerForTesting(_ text: String) -> Int? { parseInteger(Array(text.utf8)) }

    /// `-?[0-9]+` as an Int, or nil when malformed or out of range.
    static func parseInteger<C: Collection>(_ digits: C, crlf: Bool = true) -> Int? where C.Element == UInt8 {
        guard crlf, !digits.isEmpty else { return nil }
        var value = 0
        var negative = false
        for (i, b) in digits.enumerated() {
            if i == 0 && b == UInt8(ascii: "-") && digits.count > 1 { negative = true; continue }
            guard b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") else { return nil }
            let (times10, o1) = value.multipliedReportingOverflow(by: 10)
            // Accumulate negatively so Int.min itself parses; positive values are negated at the end.
            let (next, o2) = times10.subtractingReportingOverflow(Int(b - UInt8(ascii: "0")))
            guard !o1, !o2 else { return nil }
            value = next
        }
        if negative { return value }
        let (positive, overflow) = (0).subtractingReportingOverflow(value)
        return overflow ? nil : positive
    }

    private mutating func startMultibulk(_ buffer: inout ByteBuffer) throws -> [ByteBuffer]?? {
        guard let (value, length) = try headerLine(buffer, tooBig: "too big mbulk count string") else { return nil }
        guard let count = value, count <= limits.maxArguments else {
            throw RESPProtocolError("invalid multibulk length")
        }
        if unauthenticated && count > limits.unauthenticatedMaxArguments {
            throw RESPProtocolError("unauthenticated multibulk length")
        }
        buffer.moveReaderIndex(forwardBy: length)
        if count <= 0 { return .some(nil) }
        remaining = count
        partial = []
        partialBytes = 0
        partial.reserveCapacity(min(count, 1024))
        return try continueMultibulk(&buffer)
    }

    private mutating func continueMultibulk(_ buffer: inout ByteBuffer) throws -> [ByteBuffer]?? {
        while remaining > 0 {
            guard let marker = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return nil }
            guard marker == UInt8(ascii: "$") else {
                throw RESPProtocolError("expected '$', got '\(Character(Unicode.Scalar(marker)))'")
            }
            guard let (value, headerLength) = try headerLine(buffer, tooBig: "too big bulk count string") else { return nil }
            guard let length = value, length >= 0, length <= limits.maxBulkBytes else {
                throw RESPProtocolError("invalid bulk length")
            }
            if unauthenticated && length > limits.unauthenticatedMaxBulkBytes {
                throw RESPProtocolError("unauthenticated bulk length")
            }
            // Compared by subtraction: headerLength + 2 <= readableBytes here, and length may be as large as
            // the configured limit, so `headerLength + length + 2` is never formed before it is known to fit.
            guard buffer.readableBytes - headerLength - 2 >= length else { return nil }
            let crlfAt = buffer.readerIndex + headerLength + length
            guard buffer.getInteger(at: crlfAt, as: UInt8.self) == UInt8(ascii: "\r"),
                  buffer.getInteger(at: crlfAt + 1, as: UInt8.self) == UInt8(ascii: "\n") else {
                throw RESPProtocolError("bulk string of \(length) bytes is not followed by CRLF")
            }
            buffer.moveReaderIndex(forwardBy: headerLength)
            // Copied out so a request does not pin the whole (possibly large) read buffer.
            let arg = ByteBuffer(buffer.readableBytesView.prefix(length))
            buffer.moveReaderIndex(forwardBy: length + 2)
            partial.append(arg)
            partialBytes += length
            remaining -= 1
        }
        let request = partial
        partial = []
        partialBytes = 0
        return .some(request)
    }

    // MARK: Inline

    /// Whether `b` can appear in a typed inline request: printable ASCII, tab, CR, ESC (terminal keys)
    /// and bytes of UTF-8 text. Anything else (NUL, other control bytes, DEL) means the peer is not
    /// typing commands: binary garbage, a TLS ClientHello or an HTTP/2 preface on the plain port. It is
    /// refused at once instead of waiting for a newline that may never come.
    @inline(__always)
    static func isInlineText(_ b: UInt8) -> Bool {
        b >= 0x20 ? b != 0x7F : (b == 0x09 || b == 0x0D || b == 0x1B)
    }

    private mutating func inline(_ buffer: inout ByteBuffer) throws -> [ByteBuffer]?? {
        let view = buffer.readableBytesView
        // Bytes before `inlineScanned` were checked by an earlier call (the line is still arriving), so
        // a line received one byte per read is scanned once, not once per read.
        var i = view.startIndex + min(inlineScanned, view.count)
        var newline: Int?
        while i < view.endIndex {
            let b = view[i]
            if b == UInt8(ascii: "\n") { newline = i; break }
            if !Self.isInlineText(b) {
                throw RESPProtocolError("invalid byte 0x\(String(b, radix: 16)) in an inline request: send RESP (multibulk) or text commands")
            }
            i += 1
        }
        guard let nl = newline else {
            inlineScanned = view.count
            if view.count > limits.maxInlineBytes { throw RESPProtocolError("too big inline request") }
            if unauthenticated && view.count > limits.unauthenticatedMaxBulkBytes {
                throw RESPProtocolError("unauthenticated inline request too big")
            }
            return nil
        }
        inlineScanned = 0
        var line = view[view.startIndex..<nl]
        if line.count > limits.maxInlineBytes { throw RESPProtocolError("too big inline request") }
        if unauthenticated && line.count > limits.unauthenticatedMaxBulkBytes {
            throw RESPProtocolError("unauthenticated inline request too big")
        }
        if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
        let words = try InlineSplitter.split(Array(line))
        buffer.moveReaderIndex(forwardBy: nl - view.startIndex + 1)
        if words.isEmpty { return .some(nil) }
        return .some(words.map { ByteBuffer(bytes: $0) })
    }

}

/// Splits an inline request into words the way Redis' sdssplitargs does: spaces separate words;
/// "double quotes" allow \n \r \t \b \a \\ \" and \xHH escapes; 'single quotes' allow \' only.
/// A closing quote must be followed by a space or the end of the line.
public enum InlineSplitter {
    public static func split(_ line: [UInt8]) throws -> [[UInt8]] {
        var words: [[UInt8]] = []
        var i = 0
        let n = line.count
        func isSpace(_ b: UInt8) -> Bool { b == 32 || b == 9 || b == 10 || b == 13 || b == 11 || b == 12 }
        func hex(_ b: UInt8) -> UInt8? {
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return b - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return b - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return b - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
        let unbalanced = RESPProtocolError("unbalanced quotes in request")
        while i < n {
            while i < n && isSpace(line[i]) { i += 1 }
            if i >= n { break }
            var word: [UInt8] = []
            var inDouble = false, inSingle = false
            var done = false
            while !done {
                if inDouble {
                    guard i < n else { throw unbalanced }
                    let c = line[i]
                    if c == UInt8(ascii: "\\") && i + 3 < n && line[i + 1] == UInt8(ascii: "x"),
                       let h = hex(line[i + 2]), let l = hex(line[i + 3]) {
                        word.append(h * 16 + l)
                        i += 3
                    } else if c == UInt8(ascii: "\\") && i + 1 < n {
                        i += 1
                        switch line[i] {
                        case UInt8(ascii: "n"): word.append(10)
                        case UInt8(ascii: "r"): word.append(13)
                        case UInt8(ascii: "t"): word.append(9)
                        case UInt8(ascii: "b"): word.append(8)
                        case UInt8(ascii: "a"): word.append(7)
                        default: word.append(line[i])
                        }
                    } else if c == UInt8(ascii: "\"") {
                        if i + 1 < n && !isSpace(line[i + 1]) { throw unbalanced }
                        done = true
                    } else {
                        word.append(c)
                    }
                } else if inSingle {
                    guard i < n else { throw unbalanced }
                    let c = line[i]
                    if c == UInt8(ascii: "\\") && i + 1 < n && line[i + 1] == UInt8(ascii: "'") {
                        word.append(UInt8(ascii: "'"))
                        i += 1
                    } else if c == UInt8(ascii: "'") {
                        if i + 1 < n && !isSpace(line[i + 1]) { throw unbalanced }
                        done = true
                    } else {
                        word.append(c)
                    }
                } else {
                    if i >= n { break }
                    let c = line[i]
                    if isSpace(c) {
                        done = true
                    } else if c == UInt8(ascii: "\"") {
                        inDouble = true
                    } else if c == UInt8(ascii: "'") {
                        inSingle = true
                    } else {
                        word.append(c)
                    }
                }
                if i < n { i += 1 }
            }
            words.append(word)
        }
        return words
    }
}
