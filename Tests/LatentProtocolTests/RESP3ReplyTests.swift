import LatentProtocol
import NIOCore
import NIOEmbedded
import XCTest

/// RESP3 beside RESP2: each reply type's bytes in both protocols, through the encoder in a channel.
final class RESP3ReplyTests: XCTestCase {
    private func wire(_ v: RESPValue, _ version: RESPVersion) throws -> String {
        let channel = EmbeddedChannel(handler: MessageToByteHandler(RESPEncoder(version: version)))
        try channel.writeAndFlush(v).wait()
        var out = ""
        while let b = try channel.readOutbound(as: ByteBuffer.self) { out += String(buffer: b) }
        _ = try channel.finish()
        return out
    }

    func testScalarsInBothProtocols() throws {
        XCTAssertEqual(try wire(.null, .resp2), "$-1\r\n")
        XCTAssertEqual(try wire(.null, .resp3), "_\r\n")
        XCTAssertEqual(try wire(.nullArray, .resp2), "*-1\r\n")
        XCTAssertEqual(try wire(.nullArray, .resp3), "_\r\n")
        XCTAssertEqual(try wire(.boolean(true), .resp2), ":1\r\n")
        XCTAssertEqual(try wire(.boolean(false), .resp3), "#f\r\n")
        XCTAssertEqual(try wire(.double(0.25), .resp2), "$4\r\n0.25\r\n")
        XCTAssertEqual(try wire(.double(0.25), .resp3), ",0.25\r\n")
        XCTAssertEqual(try wire(.double(3), .resp3), ",3\r\n")
        XCTAssertEqual(try wire(.double(.infinity), .resp3), ",inf\r\n")
        XCTAssertEqual(try wire(.double(-.infinity), .resp2), "$4\r\n-inf\r\n")
        XCTAssertEqual(try wire(.double(.nan), .resp3), ",nan\r\n")
        // A float score prints as the float's shortest text, not the double's expansion.
        XCTAssertEqual(try wire(.double(float: 4.32), .resp3), ",4.32\r\n")
        XCTAssertEqual(try wire(.verbatim("a:1"), .resp3), "=7\r\ntxt:a:1\r\n")
        XCTAssertEqual(try wire(.verbatim("a:1"), .resp2), "$3\r\na:1\r\n")
    }

    func testAggregates() throws {
        let m = RESPValue.map([("a", .integer(1)), ("b", .double(0.5))])
        XCTAssertEqual(try wire(m, .resp3), "%2\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n,0.5\r\n")
        XCTAssertEqual(try wire(m, .resp2), "*4\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n$3\r\n0.5\r\n")
        XCTAssertEqual(try wire(.set([.integer(1)]), .resp3), "~1\r\n:1\r\n")
        XCTAssertEqual(try wire(.set([.integer(1)]), .resp2), "*1\r\n:1\r\n")
    }

    // VSIM WITHSCORES WITHATTRIBS: element -> [score, attributes] in RESP3, a flat triple in RESP2.
    func testGroupsSpliceIntoTheirParentInRESP2() throws {
        let reply = RESPValue.map([.bulk("e"), .group([.double(0.5), .null]), .bulk("f"), .group([.double(1), .bulk("{}")])])
        XCTAssertEqual(try wire(reply, .resp3),
                       "%2\r\n$1\r\ne\r\n*2\r\n,0.5\r\n_\r\n$1\r\nf\r\n*2\r\n,1\r\n$2\r\n{}\r\n")
        XCTAssertEqual(try wire(reply, .resp2),
                       "*6\r\n$1\r\ne\r\n$3\r\n0.5\r\n$-1\r\n$1\r\nf\r\n$1\r\n1\r\n$2\r\n{}\r\n")
    }
}
