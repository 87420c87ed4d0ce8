import LatentProtocol
import NIOCore
import NIOEmbedded
import XCTest

final class RESPDecoderTests: XCTestCase {
    private func channel(_ limits: RESPDecoderLimits = RESPDecoderLimits()) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(RESPDecoder(limits: limits)))
        return channel
    }

    private func requests(_ channel: EmbeddedChannel) throws -> [[String]] {
        var out: [[String]] = []
        while let r = try channel.readInbound(as: [ByteBuffer].self) { out.append(r.map { String(buffer: $0) }) }
        return out
    }

    private func feed(_ channel: EmbeddedChannel, _ s: String) throws {
        try channel.writeInbound(ByteBuffer(string: s))
    }

    func testInlineWordsAndLineEndings() throws {
        let c = try channel()
        try feed(c, "PING\r\nVADD items VALUES 2 1 0.5 a\nECHO   spaced    words\r\n")
        XCTAssertEqual(try requests(c), [["PING"], ["VADD", "items", "VALUES", "2", "1", "0.5", "a"], ["ECHO", "spaced", "words"]])
    }

    func testInlineQuotesAndEscapes() throws {
        let c = try channel()
        try feed(c, "VSETATTR k e \"{\\\"year\\\": 1995}\"\r\nECHO 'it\\'s' \"\\x41\\n\" \"\"\r\n")
        XCTAssertEqual(try requests(c), [["VSETATTR", "k", "e", "{\"year\": 1995}"], ["ECHO", "it's", "A\n", ""]])
    }

    func testEmptyInlineLinesAreIgnored() throws {
        let c = try channel()
        try feed(c, "\r\n\n   \r\nPING\r\n")
        XCTAssertEqual(try requests(c), [["PING"]])
    }

    func testMultibulkWithBinaryPayload() throws {
        let c = try channel()
        var b = ByteBuffer(string: "*3\r\n$4\r\nECHO\r\n$4\r\n")
        b.writeBytes([0x00, 0x0D, 0x0A, 0xFF])
        b.writeString("\r\n$0\r\n\r\n")
        try c.writeInbound(b)
        let r = try XCTUnwrap(try c.readInbound(as: [ByteBuffer].self))
        XCTAssertEqual(r.count, 3)
        XCTAssertEqual(Array(r[1].readableBytesView), [0x00, 0x0D, 0x0A, 0xFF])
        XCTAssertEqual(r[2].readableBytes, 0)
    }

    func testPipelinedMixedFramingInOneRead() throws {
        let c = try channel()
        try feed(c, "*1\r\n$4\r\nPING\r\nVCARD a\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n*0\r\nPING\r\n")
        XCTAssertEqual(try requests(c), [["PING"], ["VCARD", "a"], ["ECHO", "hi"], ["PING"]])
    }

    func testSplitAtEveryByte() throws {
        let stream = "*3\r\n$4\r\nVADD\r\n$5\r\nitems\r\n$11\r\nhello world\r\nVCARD \"my key\"\r\n*1\r\n$4\r\nPING\r\n"
        let expected = [["VADD", "items", "hello world"], ["VCARD", "my key"], ["PING"]]
        let bytes = Array(stream.utf8)
        // One byte per read.
        let c = try channel()
        for b in bytes { try c.writeInbound(ByteBuffer(bytes: [b])) }
        XCTAssertEqual(try requests(c), expected)
        // And every split into two reads.
        for cut in 1..<bytes.count {
            let c2 = try channel()
            try c2.writeInbound(ByteBuffer(bytes: bytes[..<cut]))
            try c2.writeInbound(ByteBuffer(bytes: bytes[cut...]))
            XCTAssertEqual(try requests(c2), expected, "split at \(cut)")
        }
    }

    private func assertProtocolError(_ input: String, limits: RESPDecoderLimits = RESPDecoderLimits(),
                                     _ message: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let c = try channel(limits)
        XCTAssertThrowsError(try feed(c, input), file: file, line: line) { error in
            XCTAssertEqual(error as? RESPProtocolError, RESPProtocolError(message), file: file, line: line)
        }
    }

    func testOversizedInlineRequest() throws {
        let limits = RESPDecoderLimits(maxInlineBytes: 100)
        try assertProtocolError(String(repeating: "a", count: 101), limits: limits, "too big inline request")
        try assertProtocolError(String(repeating: "a", count: 150) + "\r\n", limits: limits, "too big inline request")
        // Exactly at the limit is fine.
        let c = try channel(limits)
        try feed(c, String(repeating: "a", count: 100) + "\n")
        XCTAssertEqual(try requests(c).count, 1)
    }

    func testDefaultInlineLimitIs64KiB() throws {
        try assertProtocolError(String(repeating: "x", count: 64 * 1024 + 1), "too big inline request")
    }

    func testOversizedBulkIsRejectedBeforeItArrives() throws {
        try assertProtocolError("*2\r\n$4\r\nECHO\r\n$2000\r\n", limits: RESPDecoderLimits(maxBulkBytes: 1000), "invalid bulk length")
    }

    func testMalformedFrames() throws {
        try assertProtocolError("*abc\r\n", "invalid multibulk length")
        try assertProtocolError("*2\r\n+OK\r\n", "expected '$', got '+'")
        try assertProtocolError("*1\r\n$-5\r\n", "invalid bulk length")
        try assertProtocolError("*1\r\n$3\r\nabcXY", "bulk string of 3 bytes is not followed by CRLF")
        try assertProtocolError("*99999999999\r\n", "invalid multibulk length")
        try assertProtocolError("ECHO \"unterminated\r\n", "unbalanced quotes in request")
        try assertProtocolError("ECHO \"a\"b\r\n", "unbalanced quotes in request")
    }

    func testUnterminatedRequestWaitsForMoreBytes() throws {
        let c = try channel()
        try feed(c, "*2\r\n$4\r\nECHO\r\n$5\r\nhel")
        XCTAssertEqual(try requests(c), [])
        try feed(c, "lo\r\n")
        XCTAssertEqual(try requests(c), [["ECHO", "hello"]])
    }

    // Regression (issue 7): these 22-byte frames trapped on integer overflow and killed the server.
    func testHugeCountsAreProtocolErrorsNotTraps() throws {
        try assertProtocolError("*9223372036854775808\r\n", "invalid multibulk length")
        try assertProtocolError("*99999999999999999999\r\n", "invalid multibulk length")
        try assertProtocolError("*-9999999999999999999\r\n", "invalid multibulk length")
        try assertProtocolError("*1\r\n$9223372036854775808\r\n", "invalid bulk length")
        try assertProtocolError("*1\r\n$9223372036854775807\r\n", "invalid bulk length")
        try assertProtocolError("*1\r\n$-9223372036854775808\r\n", "invalid bulk length")
        // A limit as large as the flag accepts still cannot overflow `header + length + CRLF`.
        let huge = RESPDecoderLimits(maxBulkBytes: RESPDecoderLimits.largestBulkBytes)
        let c = try channel(huge)
        try feed(c, "*1\r\n$\(RESPDecoderLimits.largestBulkBytes)\r\nabc")
        XCTAssertEqual(try requests(c), [])
    }

    func testIntegerParserIsChecked() {
        XCTAssertEqual(RESPDecoder.parseIntegerForTesting("9223372036854775807"), Int.max)
        XCTAssertEqual(RESPDecoder.parseIntegerForTesting("-9223372036854775808"), Int.min)
        XCTAssertNil(RESPDecoder.parseIntegerForTesting("9223372036854775808"))
        XCTAssertNil(RESPDecoder.parseIntegerForTesting("-9223372036854775809"))
        XCTAssertNil(RESPDecoder.parseIntegerForTesting("-"))
        XCTAssertNil(RESPDecoder.parseIntegerForTesting(""))
        XCTAssertNil(RESPDecoder.parseIntegerForTesting("1-"))
        XCTAssertEqual(RESPDecoder.parseIntegerForTesting("-0"), 0)
        XCTAssertEqual(RESPDecoder.parseIntegerForTesting("000123"), 123)
    }

    func testOversizedHeaderLineIsRefused() throws {
        let limits = RESPDecoderLimits(maxInlineBytes: 100)
        try assertProtocolError("*" + String(repeating: "1", count: 150) + "\r\n", limits: limits, "too big mbulk count string")
    }

    // Redis' CVE-2021-32675 limits: before AUTH a client cannot make the server buffer large requests.
    func testUnauthenticatedClientsMaySendOnlySmallRequests() throws {
        func gated() throws -> (EmbeddedChannel, AuthenticationState) {
            let auth = AuthenticationState(authenticated: false)
            let c = EmbeddedChannel()
            try c.pipeline.syncOperations.addHandler(ByteToMessageHandler(RESPDecoder(authentication: auth)))
            return (c, auth)
        }
        func expectError(_ input: String, _ message: String) throws {
            let (c, _) = try gated()
            XCTAssertThrowsError(try feed(c, input)) { XCTAssertEqual($0 as? RESPProtocolError, RESPProtocolError(message)) }
        }
        try expectError("*11\r\n", "unauthenticated multibulk length")
        try expectError("*2\r\n$4\r\nAUTH\r\n$500000000\r\n", "unauthenticated bulk length")
        try expectError("AUTH " + String(repeating: "p", count: 17_000) + "\r\n", "unauthenticated inline request too big")
        // Small requests pass; after AUTH the normal limits apply.
        let (c, auth) = try gated()
        try feed(c, "*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n")
        XCTAssertEqual(try requests(c), [["AUTH", "pw"]])
        auth.isAuthenticated = true
        try feed(c, "*2\r\n$4\r\nECHO\r\n$20000\r\n" + String(repeating: "x", count: 20_000) + "\r\n")
        XCTAssertEqual(try requests(c).first?.count, 2)
    }

    // A peer that is not typing commands (binary garbage, a TLS ClientHello on the plain port) is told at
    // once instead of waiting for a newline that never comes.
    func testBinaryBytesInAnInlineRequestAreRefusedAtOnce() throws {
        try assertProtocolError("PI\u{0}NG", "invalid byte 0x0 in an inline request: send RESP (multibulk) or text commands")
        let c = try channel()
        XCTAssertThrowsError(try c.writeInbound(ByteBuffer(bytes: [0x16, 0x03, 0x01, 0x02, 0x00]))) {
            XCTAssertEqual(($0 as? RESPProtocolError)?.message.hasPrefix("invalid byte 0x16"), true)
        }
        // Text stays text: tabs, CR, ESC from terminal keys, UTF-8, and binary inside multibulk.
        let ok = try channel()
        try ok.writeInbound(ByteBuffer(bytes: Array("ECHO\tcaf\u{E9} \u{1B}[A\r\n".utf8)))
        XCTAssertEqual(try requests(ok), [["ECHO", "caf\u{E9}", "\u{1B}[A"]])
        // A line arriving one byte per read is checked as it comes.
        let slow = try channel()
        for b in Array("PING".utf8) { try slow.writeInbound(ByteBuffer(bytes: [b])) }
        XCTAssertThrowsError(try slow.writeInbound(ByteBuffer(bytes: [0x01])))
    }

    func testEncoderWritesRESP2() throws {
        var b = ByteBuffer()
        RESPValue.array([.simpleString("OK"), .err("bad\r\nthing"), .integer(-3), .bulk("hé"), .null, .nullArray, .array([])])
            .write(into: &b)
        XCTAssertEqual(String(buffer: b), "*7\r\n+OK\r\n-ERR bad  thing\r\n:-3\r\n$3\r\nhé\r\n$-1\r\n*-1\r\n*0\r\n")
    }
}
