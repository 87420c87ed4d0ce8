import Foundation
import LatentEngine
import LatentStorage
import LatentProtocol
@testable import LatentServer
import NIOCore
import XCTest

final class CommandExecutorTests: CatalogTestCase {
    override var fsync: FsyncPolicy { .always }

    private func executor(password: String? = nil) -> CommandExecutor {
        var config = ServerConfiguration()
        config.password = password
        return CommandExecutor(catalog: catalog, configuration: config)
    }

    /// The reply as a RESP2 client sees it (maps flat, booleans 1/0, doubles as text): the shapes these
    /// tests check. RESP3's own shapes are checked in RESP3ReplyTests.
    private func run(_ e: CommandExecutor, _ session: Session, _ line: String) -> RESPValue {
        let words = line.split(separator: " ").map { ByteBuffer(string: String($0)) }
        return e.execute(batch: [words], session: session)[0].reply.asSeenByRESP2
    }

    private func strings(_ v: RESPValue) -> [String] {
        guard case .array(let items) = v else { return [] }
        return items.map { if case .bulkString(let b) = $0 { return String(buffer: b) } else { return "\($0)" } }
    }

    func testVectorCommandsReplyShapes() {
        let e = executor(), s = Session(id: 1, authenticated: true)
        XCTAssertEqual(run(e, s, "VCREATE items DIM 2 METRIC IP"), .ok)
        XCTAssertEqual(run(e, s, "VCREATE items DIM 2"), .err("collection 'items' already exists"))
        XCTAssertEqual(run(e, s, "VADD items VALUES 2 1 0 a"), .integer(1))
        XCTAssertEqual(run(e, s, "VADD items VALUES 2 2 2 b"), .integer(1))
        XCTAssertEqual(run(e, s, "VADD items VALUES 2 0 1 a"), .integer(0))
        XCTAssertEqual(run(e, s, "VCARD items"), .integer(2))
        XCTAssertEqual(run(e, s, "VDIM items"), .integer(2))
        XCTAssertEqual(strings(run(e, s, "VEMB items a")), ["0", "1"])
        XCTAssertEqual(strings(run(e, s, "VSIM items VALUES 2 1 1 WITHSCORES")), ["b", "4", "a", "1"])
        XCTAssertEqual(run(e, s, "VISMEMBER items a"), .integer(1))
        XCTAssertEqual(run(e, s, "VREM items a"), .integer(1))
        XCTAssertEqual(run(e, s, "VREM items a"), .integer(0))
        XCTAssertEqual(run(e, s, "VISMEMBER items a"), .integer(0))
        XCTAssertEqual(strings(run(e, s, "VLIST")), ["items"])
        XCTAssertEqual(run(e, s, "VDROP items"), .integer(1))
        XCTAssertEqual(run(e, s, "VDROP items"), .integer(0))
        XCTAssertEqual(run(e, s, "VCARD items"), .integer(0))
    }

    func testMissingKeysAndElements() {
        let e = executor(), s = Session(id: 1, authenticated: true)
        XCTAssertEqual(run(e, s, "VSIM nothing VALUES 2 1 1"), .array([]))
        XCTAssertEqual(run(e, s, "VEMB nothing x"), .null)
        XCTAssertEqual(run(e, s, "VGETATTR nothing x"), .null)
        XCTAssertEqual(run(e, s, "VINFO nothing"), .nullArray)
        XCTAssertEqual(run(e, s, "VDIM nothing"), .err("key does not exist"))
        XCTAssertEqual(run(e, s, "VADD k VALUES 2 1 1 a"), .integer(1))
        XCTAssertEqual(run(e, s, "VSIM k ELE zzz"), .err("element 'zzz' not found in set"))
        XCTAssertEqual(run(e, s, "VSIM k ELE a FROM nope"), .err("no such collection 'nope'"))
        XCTAssertEqual(run(e, s, "VSIM k VALUES 2 1 1 COUNT 0"), .err("invalid COUNT 0: must be 1 or more"))
        // Any positive COUNT, as Redis: bounded by the collection's size, not refused.
        XCTAssertEqual(run(e, s, "VSIM k VALUES 2 1 1 COUNT 10001"), .array([.bulk("a")]))
        XCTAssertEqual(run(e, s, "VSIM k VALUES 2 1 1 COUNT 9223372036854775807"), .array([.bulk("a")]))
        XCTAssertEqual(run(e, s, "VSIM k VALUES 3 1 1 1"), .err("vector dimension mismatch: collection 'k' has dimension 2, got 3"))
    }

    func testVAddCreatesCosineCollectionAndFromQueries() {
        let e = executor(), s = Session(id: 1, authenticated: true)
        XCTAssertEqual(run(e, s, "VCREATE items DIM 2 METRIC IP"), .ok)
        XCTAssertEqual(run(e, s, "VADD users VALUES 2 1 3 u42"), .integer(1))
        XCTAssertEqual(catalog.collection("users")?.metric, .cosine)
        _ = run(e, s, "VADD items VALUES 2 1 0 m1")
        _ = run(e, s, "VADD items VALUES 2 0 1 m2")
        _ = run(e, s, "VADD items VALUES 2 5 0 m3")
        // u42 . m1 = 1, . m2 = 3, . m3 = 5
        XCTAssertEqual(strings(run(e, s, "VSIM items ELE u42 FROM users COUNT 2 WITHSCORES")), ["m3", "5", "m2", "3"])
    }

    func testAttributes() {
        let e = executor(), s = Session(id: 1, authenticated: true)
        let words = ["VADD", "k", "VALUES", "1", "1", "a", "SETATTR", "{\"title\":\"Toy Story\"}"].map { ByteBuffer(string: $0) }
        XCTAssertEqual(e.execute(batch: [words], session: s)[0].reply, .boolean(true))
        XCTAssertEqual(run(e, s, "VGETATTR k a"), .bulk("{\"title\":\"Toy Story\"}"))
        XCTAssertEqual(strings(run(e, s, "VSIM k ELE a WITHATTRIBS")), ["a", "{\"title\":\"Toy Story\"}"])
        // Any string is kept, as Redis does (not JSON is no error; a FILTER just matches nothing in it).
        XCTAssertEqual(run(e, s, "VSETATTR k a {bad"), .integer(1))
        XCTAssertEqual(run(e, s, "VGETATTR k a"), .bulk("{bad"))
        XCTAssertEqual(run(e, s, "VSETATTR k zz {}"), .integer(0))
        let clear = ["VSETATTR", "k", "a", ""].map { ByteBuffer(string: $0) }
        XCTAssertEqual(e.execute(batch: [clear], session: s)[0].reply, .boolean(true))
        XCTAssertEqual(run(e, s, "VGETATTR k a"), .null)
    }

    func testAuthentication() {
        let e = executor(password: "s3cret"), s = Session(id: 1, authenticated: false)
        XCTAssertEqual(run(e, s, "VCARD k"), .error("NOAUTH Authentication required."))
        XCTAssertEqual(run(e, s, "FROB"), .error("NOAUTH Authentication required."))
        XCTAssertEqual(run(e, s, "AUTH wrong"), .error("WRONGPASS invalid username-password pair or user is disabled."))
        XCTAssertEqual(run(e, s, "AUTH default s3cret"), .ok)
        XCTAssertEqual(run(e, s, "VCARD k"), .integer(0))
        let open = executor(), s2 = Session(id: 2, authenticated: true)
        XCTAssertTrue(run(open, s2, "AUTH x").isError)
    }

    // Regression (issue 7): HELLO 2 AUTH ignored its credentials; passwords compared as Unicode text.
    func testHelloAuthAndPasswordsCompareAsBytes() {
        let e = executor(password: "s3cret"), s = Session(id: 1, authenticated: false)
        XCTAssertEqual(run(e, s, "HELLO 2 AUTH default wrong"), .error("WRONGPASS invalid username-password pair or user is disabled."))
        XCTAssertFalse(s.authenticated)
        XCTAssertTrue(run(e, s, "HELLO 2").isError)
        guard case .array = run(e, s, "HELLO 2 AUTH default s3cret SETNAME app") else { return XCTFail("HELLO AUTH refused") }
        XCTAssertTrue(s.authenticated)
        XCTAssertEqual(run(e, s, "CLIENT GETNAME"), .bulk("app"))
        // "café" with a precomposed é must not accept "cafe" + combining acute accent (equal as Swift Strings).
        let accented = executor(password: "caf\u{E9}"), s2 = Session(id: 2, authenticated: false)
        let combining = [ByteBuffer(string: "AUTH"), ByteBuffer(string: "cafe\u{301}")]
        XCTAssertTrue(accented.execute(batch: [combining], session: s2)[0].reply.isError)
        XCTAssertFalse(s2.authenticated)
        XCTAssertEqual(accented.execute(batch: [[ByteBuffer(string: "AUTH"), ByteBuffer(string: "caf\u{E9}")]], session: s2)[0].reply, .ok)
        XCTAssertTrue(CommandExecutor.constantTimeEqual([1, 2, 3], [1, 2, 3]))
        XCTAssertFalse(CommandExecutor.constantTimeEqual([1, 2, 3], [1, 2]))
        XCTAssertFalse(CommandExecutor.constantTimeEqual([1, 2, 3], [1, 2, 4]))
        XCTAssertFalse(CommandExecutor.constantTimeEqual([], [0]))
    }

    func testToolHandshakes() {
        let e = executor(), s = Session(id: 7, authenticated: true)
        XCTAssertEqual(run(e, s, "COMMAND DOCS"), .array([]))
        XCTAssertEqual(strings(run(e, s, "CONFIG GET save")), ["save", ""])
        XCTAssertEqual(strings(run(e, s, "CONFIG GET appendonly")), ["appendonly", "no"])
        XCTAssertEqual(run(e, s, "CLIENT SETINFO LIB-NAME x"), .ok)
        XCTAssertEqual(run(e, s, "SELECT 0"), .ok)
        XCTAssertTrue(run(e, s, "SELECT 1").isError)
        XCTAssertEqual(run(e, s, "HELLO 4"), .error("NOPROTO unsupported protocol version"))
        XCTAssertEqual(s.protocolVersion, .resp2)
        XCTAssertEqual(strings(run(e, s, "HELLO 3")).prefix(6), ["server", "redis", "version", "8.4.0", "proto", "integer(3)"])
        XCTAssertEqual(s.protocolVersion, .resp3)
        XCTAssertEqual(strings(run(e, s, "HELLO 2")).prefix(6), ["server", "redis", "version", "8.4.0", "proto", "integer(2)"])
        XCTAssertEqual(s.protocolVersion, .resp2)
        XCTAssertEqual(run(e, s, "PING"), .simpleString("PONG"))
        XCTAssertEqual(run(e, s, "PING hi"), .bulk("hi"))
    }

    func testInfoCountsCommandsPerName() {
        let e = executor(), s = Session(id: 1, authenticated: true)
        _ = run(e, s, "VADD k VALUES 1 1 a")
        _ = run(e, s, "VADD k VALUES 1 2 b")
        _ = run(e, s, "VCARD k")
        guard case .bulkString(let b) = run(e, s, "INFO everything") else { return XCTFail("INFO is not a bulk string") }
        let text = String(buffer: b)
        for expected in ["# Server", "# Clients", "# Stats", "# Memory", "# Keyspace", "# Replication", "# CPU", "# Cluster",
                         "# LatentDB", "cmdstat_vadd:calls=2", "cmdstat_vcard:calls=1", "collections:1", "vectors:2",
                         "redis_version:8.4.0", "arch_bits:64", "cluster_enabled:0", "role:master", "db0:keys=1,expires=0",
                         "used_memory:", "used_memory_human:"] {
            XCTAssertTrue(text.contains(expected), "INFO lacks \(expected):\n\(text)")
        }
        guard case .bulkString(let only) = run(e, s, "INFO keyspace") else { return XCTFail() }
        XCTAssertFalse(String(buffer: only).contains("# Server"))
    }

    func testQuitAndShutdownEndTheBatch() {
        let e = executor(), s = Session(id: 1, authenticated: true)
        let batch = ["PING", "QUIT", "PING"].map { [ByteBuffer(string: $0)] }
        let outcomes = e.execute(batch: batch, session: s)
        XCTAssertEqual(outcomes.map(\.after), [.none, .close])
        XCTAssertEqual(e.execute(batch: [[ByteBuffer(string: "SHUTDOWN")]], session: s)[0].after, .shutdown)
    }

    /// Pipelined VADDs to one key are written as one group (CommandExecutor+VAddGroups); the replies and
    /// the data must be exactly those of the same requests sent one by one.
    func testPipelinedVAddsReplyExactlyAsOneByOne() throws {
        let lines = ["VCREATE f DIM 2 METRIC L2", "VADD f VALUES 2 1 0 a", "VADD f VALUES 2 1 1 b", "VADD f VALUES 2 0 0 a",
                     "VADD f VALUES 3 1 1 1 c", "VADD f VALUES 2 nan 1 d", "VADD f VALUES 2 5 5 e SETATTR {\"x\":1}",
                     "VADD f VALUES 2 5 6 e", "VADD f VALUES 2 5 7 e SETATTR", "VADD f Q8 VALUES 2 1 2 g",
                     "VADD other VALUES 2 1 0 a", "VADD other VALUES 2 0 1 b", "VADD other REDUCE 1 VALUES 2 1 1 z",
                     "VADD f VALUES 2 9 9 h", "VADD f VALUES 2 9 9 a", "VCARD f", "VCARD other", "VGETATTR f e", "VEMB f a"]
        let requests = lines.map { line -> [ByteBuffer] in
            var words = line.split(separator: " ").map { ByteBuffer(string: String($0)) }
            if line.hasSuffix("SETATTR") { words.append(ByteBuffer(string: "")) } // SETATTR "": remove
            return words
        }
        let e = executor(), s = Session(id: 1, authenticated: true)
        let together = e.execute(batch: requests, session: s).map { $0.reply.asSeenByRESP2 }
        catalog.close()
        try FileManager.default.removeItem(atPath: directory)
        catalog = try CollectionCatalog(directory: directory, fsync: .always)
        let e2 = executor()
        let apart = requests.map { e2.execute(batch: [$0], session: s)[0].reply.asSeenByRESP2 }
        XCTAssertEqual(together, apart)
        XCTAssertEqual(together[1...3], [.integer(1), .integer(1), .integer(0)])
        XCTAssertTrue(together[4].isError && together[5].isError, "\(together[4]) \(together[5])")
        XCTAssertTrue(together[9].isError, "Q8 on an FP32 set is an error: \(together[9])")
        XCTAssertEqual(together[15], .integer(4)) // a, b, e, h
        XCTAssertEqual(together[17], .null, "SETATTR \"\" removed e's attributes")
    }
}

extension RESPValue {
    /// What a RESP2 client reads for this reply (RESPValue.write's RESP2 rules, as values).
    var asSeenByRESP2: RESPValue {
        switch self {
        case .boolean(let b): return .integer(b ? 1 : 0)
        case .double(let d): return .bulk(RESPValue.format(d))
        case .verbatim(let t): return .bulk(t)
        case .array(let items), .set(let items), .map(let items), .group(let items):
            return .array(items.flatMap { item -> [RESPValue] in
                if case .group(let inner) = item { return inner.map(\.asSeenByRESP2) }
                return [item.asSeenByRESP2]
            })
        default: return self
        }
    }
}
