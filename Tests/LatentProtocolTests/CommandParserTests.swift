import LatentFilter
import LatentIndex
import LatentProtocol
import LatentVectors
import NIOCore
import XCTest

final class CommandParserTests: XCTestCase {
    private func parse(_ words: [String]) throws -> Command {
        try CommandParser.parse(words.map { ByteBuffer(string: $0) })
    }

    private func assertError(_ words: [String], _ expected: CommandError, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try parse(words), file: file, line: line) { e in
            XCTAssertEqual(e as? CommandError, expected, file: file, line: line)
        }
    }

    private func assertSyntaxError(_ words: [String], containing text: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try parse(words), file: file, line: line) { e in
            guard case .syntax(let m)? = e as? CommandError else { return XCTFail("not a syntax error: \(e)", file: file, line: line) }
            XCTAssertTrue(m.contains(text), "'\(m)' lacks '\(text)'", file: file, line: line)
        }
    }

    func testSlowlogAndResetStatForms() throws {
        XCTAssertEqual(try parse(["SLOWLOG", "GET"]), .slowlog(.get(count: nil)))
        XCTAssertEqual(try parse(["slowlog", "get", "-1"]), .slowlog(.get(count: -1)))
        XCTAssertEqual(try parse(["SLOWLOG", "GET", "25"]), .slowlog(.get(count: 25)))
        XCTAssertEqual(try parse(["SLOWLOG", "LEN"]), .slowlog(.len))
        XCTAssertEqual(try parse(["SLOWLOG", "RESET"]), .slowlog(.reset))
        XCTAssertEqual(try parse(["SLOWLOG", "HELP"]), .slowlog(.help))
        XCTAssertEqual(try parse(["CONFIG", "RESETSTAT"]), .configResetStat)
        assertError(["SLOWLOG"], .wrongArity("slowlog"))
        assertError(["SLOWLOG", "LEN", "x"], .wrongArity("slowlog"))
        assertError(["SLOWLOG", "GET", "1", "2"], .wrongArity("slowlog"))
        assertError(["CONFIG", "RESETSTAT", "now"], .wrongArity("config"))
        assertSyntaxError(["SLOWLOG", "GET", "-2"], containing: "out of range: use -1..")
        assertSyntaxError(["SLOWLOG", "GET", "ten"], containing: "SLOWLOG GET count must be an integer")
        assertSyntaxError(["SLOWLOG", "GET", "99999999999999999999"], containing: "must be an integer")
        assertSyntaxError(["SLOWLOG", "TRIM"], containing: "use GET [count], LEN, RESET or HELP")
    }

    func testBackupVerifyAndCompactForms() throws {
        XCTAssertEqual(try parse(["BACKUP", "START"]), .backup(.start))
        XCTAssertEqual(try parse(["backup", "read", "3", "000012.sst", "4096", "1048576"]),
                       .backup(.read(id: 3, file: "000012.sst", offset: 4096, count: 1_048_576)))
        XCTAssertEqual(try parse(["BACKUP", "END", "3"]), .backup(.end(id: 3)))
        XCTAssertEqual(try parse(["VERIFY"]), .verify)
        XCTAssertEqual(try parse(["COMPACT"]), .compact(key: nil))
        XCTAssertEqual(try parse(["COMPACT", "items"]), .compact(key: "items"))
        assertError(["BACKUP"], .wrongArity("backup"))
        assertError(["BACKUP", "START", "x"], .wrongArity("backup"))
        assertError(["BACKUP", "READ", "1", "f", "0"], .wrongArity("backup"))
        assertError(["BACKUP", "END"], .wrongArity("backup"))
        assertError(["VERIFY", "x"], .wrongArity("verify"))
        assertError(["COMPACT", "a", "b"], .wrongArity("compact"))
        assertSyntaxError(["BACKUP", "READ", "0", "f", "0", "1"], containing: "BACKUP READ id 0 is out of range")
        assertSyntaxError(["BACKUP", "READ", "1", "f", "-1", "1"], containing: "BACKUP READ offset -1 is out of range")
        assertSyntaxError(["BACKUP", "READ", "1", "f", "0", "0"], containing: "BACKUP READ count 0 is out of range")
        assertSyntaxError(["BACKUP", "READ", "1", "f", "0", "99999999999999999999"], containing: "must be an integer")
        assertSyntaxError(["BACKUP", "PAUSE"], containing: "use START, READ id file offset count, or END id")
    }

    func testVAddWithValuesAndAttributes() throws {
        XCTAssertEqual(try parse(["vadd", "items", "VALUES", "3", "1", "-2.5", "1e-3", "m1", "SETATTR", "{\"a\":1}"]),
                       .vadd(VAddRequest(key: "items", vector: [1, -2.5, 0.001], element: "m1", attributes: Array("{\"a\":1}".utf8))))
    }

    func testVAddWithFP32Blob() throws {
        var blob = ByteBuffer()
        for x: Float in [0.5, -1, 3] { blob.writeInteger(x.bitPattern, endianness: .little) }
        let cmd = try CommandParser.parse([ByteBuffer(string: "VADD"), ByteBuffer(string: "k"), ByteBuffer(string: "FP32"), blob, ByteBuffer(string: "e")])
        XCTAssertEqual(cmd, .vadd(VAddRequest(key: "k", vector: [0.5, -1, 3], element: "e")))
    }

    func testVAddBadInputs() {
        assertError(["VADD", "k"], .wrongArity("vadd"))
        assertError(["VADD", "k", "VALUES", "2", "1", "2"], .wrongArity("vadd"))
        assertSyntaxError(["VADD", "k", "VALUES", "5", "1", "2", "e"], containing: "VALUES 5 needs 5 numbers, got 3")
        assertSyntaxError(["VADD", "k", "VALUES", "3", "1", "2", "e"], containing: "component 2 'e' is not a number")
        assertSyntaxError(["VADD", "k", "VALUES", "2", "1", "abc", "e"], containing: "component 1 'abc' is not a number")
        assertSyntaxError(["VADD", "k", "FP32", "abc", "e"], containing: "not a whole number of float32")
        assertSyntaxError(["VADD", "k", "REDUCE", "2", "VALUES", "1", "1", "e"], containing: "REDUCE 2 is larger than the vector's 1")
        assertSyntaxError(["VADD", "k", "REDUCE", "0", "VALUES", "1", "1", "e"], containing: "invalid vector specification")
        assertSyntaxError(["VADD", "k", "VALUES", "1", "1", "e", "M", "3"], containing: "invalid M")
        assertSyntaxError(["VADD", "k", "VALUES", "1", "1", "e", "EF", "0"], containing: "invalid EF")
        assertSyntaxError(["VADD", "k", "VALUES", "1", "1", "e", "BOGUS"], containing: "invalid option after element")
        assertSyntaxError(["VADD", "k", "VALUES", "0", "e"], containing: "out of range")
    }

    func testVSimForms() throws {
        XCTAssertEqual(try parse(["VSIM", "items", "ELE", "u42", "FROM", "users", "COUNT", "5", "WITHSCORES", "EF", "50"]),
                       .vsim(VSimRequest(key: "items", input: .element("u42", from: "users"), count: 5, withScores: true, ef: 50)))
        XCTAssertEqual(try parse(["vsim", "k", "values", "2", "1", "2", "withattribs", "truth"]),
                       .vsim(VSimRequest(key: "k", input: .vector([1, 2]), withAttributes: true, truth: true)))
        assertSyntaxError(["VSIM", "k", "ELE", "a", "COUNT"], containing: "COUNT needs a value")
        assertSyntaxError(["VSIM", "k", "ELE", "a", "COUNT", "x"], containing: "COUNT must be an integer")
        var filtered = VSimRequest(key: "k", input: .element("a", from: nil))
        filtered.filter = try FilterExpression(".x > 1")
        filtered.filterEF = 20
        XCTAssertEqual(try parse(["VSIM", "k", "ELE", "a", "FILTER", ".x > 1", "FILTER-EF", "20"]), .vsim(filtered))
        assertSyntaxError(["VSIM", "k", "ELE", "a", "FILTER", ".x >"], containing: "syntax error in FILTER expression at column 5")
        assertSyntaxError(["VSIM", "k", "ELE", "a", "FILTER"], containing: "FILTER needs an expression")
        assertSyntaxError(["VSIM", "k", "ELE", "a", "FILTER-EF", "-1"], containing: "FILTER-EF -1 is out of range")
        assertSyntaxError(["VSIM", "k", "SOMETHING"], containing: "expected VALUES n")
    }

    func testVSimConstraintsAndPages() throws {
        var r = VSimRequest(key: "k", input: .vector([1, 2]))
        r.seenOf = SeenOwner(collection: "users", user: "u1")
        r.excludeSeen = true
        r.exclude = ["a", "b", "c"]
        r.minScore = 0.5
        r.offset = 20
        XCTAssertEqual(try parse(["VSIM", "k", "VALUES", "2", "1", "2", "SEEN-OF", "users", "u1", "EXCLUDE", "2", "a", "b",
                                  "exclude", "1", "c", "MINSCORE", "0.5", "OFFSET", "20"]), .vsim(r))
        var l2 = VSimRequest(key: "k", input: .element("a", from: nil))
        l2.maxDistance = 0
        XCTAssertEqual(try parse(["VSIM", "k", "ELE", "a", "MAXDIST", "0"]), .vsim(l2))
        assertSyntaxError(["VSIM", "k", "ELE", "a", "SEEN-OF", "users"], containing: "SEEN-OF needs a users collection and a user")
        assertSyntaxError(["VSIM", "k", "ELE", "a", "EXCLUDE", "0"], containing: "EXCLUDE needs a count >= 1")
        assertSyntaxError(["VSIM", "k", "ELE", "a", "EXCLUDE", "3", "x", "y"], containing: "EXCLUDE 3 needs 3 ids")
        assertSyntaxError(["VSIM", "k", "ELE", "a", "EXCLUDE", "9223372036854775807", "x"], containing: "fewer were given")
        assertSyntaxError(["VSIM", "k", "ELE", "a", "MINSCORE", "inf"], containing: "not a finite number")
        assertSyntaxError(["VSIM", "k", "ELE", "a", "MAXDIST", "-0.5"], containing: "negative")
        assertSyntaxError(["VSIM", "k", "ELE", "a", "OFFSET", "-1"], containing: "OFFSET -1 is out of range")
        assertSyntaxError(["VSIM", "k", "ELE", "a", "OFFSET", "100001"], containing: "OFFSET 100001 is out of range")
        assertSyntaxError(["VSIM", "k", "ELE", "a", "OFFSET"], containing: "OFFSET needs a value")
        // The ranking key ignores the page and nothing else.
        var page2 = r
        page2.offset = 30
        page2.count = 99
        XCTAssertEqual(page2.rankingKey, r.rankingKey)
        var other = r
        other.exclude = ["a", "b"]
        XCTAssertNotEqual(other.rankingKey, r.rankingKey)
        other = r
        other.seenOf = SeenOwner(collection: "user", user: "su1")
        XCTAssertNotEqual(other.rankingKey, r.rankingKey)
    }

    func testSeenCommandsAndVRecommend() throws {
        XCTAssertEqual(try parse(["VADDSEEN", "users", "u", "a", "b"]), .vaddseen(key: "users", element: "u", items: ["a", "b"]))
        XCTAssertEqual(try parse(["vremseen", "users", "u", "a"]), .vremseen(key: "users", element: "u", items: ["a"]))
        XCTAssertEqual(try parse(["VGETSEEN", "users", "u"]), .vgetseen(key: "users", element: "u"))
        XCTAssertThrowsError(try parse(["VADDSEEN", "users", "u"]))
        XCTAssertThrowsError(try parse(["VGETSEEN", "users", "u", "x"]))
        var r = VRecommendRequest(key: "items", positives: ["a", "b"])
        r.negatives = ["c"]
        r.from = "other"
        r.strategy = .best
        r.count = 5
        r.withScores = true
        r.filter = try FilterExpression(".x == 1")
        XCTAssertEqual(try parse(["VRECOMMEND", "items", "POSITIVE", "2", "a", "b", "NEGATIVE", "1", "c", "FROM", "other",
                                  "STRATEGY", "best", "COUNT", "5", "WITHSCORES", "FILTER", ".x == 1"]), .vrecommend(r))
        assertSyntaxError(["VRECOMMEND", "items", "NEGATIVE", "1", "a"], containing: "needs POSITIVE")
        assertSyntaxError(["VRECOMMEND", "items", "POSITIVE", "2", "a"], containing: "POSITIVE 2 needs 2 ids")
        assertSyntaxError(["VRECOMMEND", "items", "POSITIVE", "1", "a", "STRATEGY", "x"], containing: "AVERAGE or BEST")
        assertSyntaxError(["VRECOMMEND", "items", "POSITIVE", "1", "a", "NEGATIVE"], containing: "NEGATIVE needs a count")
        assertSyntaxError(["VRECOMMEND", "items", "POSITIVE", "1", "a", "SIDEWAYS"], containing: "unknown VRECOMMEND option")
        assertSyntaxError(["VRECOMMEND", "items", "POSITIVE", "1", "a", "FILTER", "(("], containing: "column")
    }

    func testVSimFoldIn() throws {
        XCTAssertEqual(try parse(["VSIM", "items", "FOLDIN", "2", "a", "b", "COUNT", "3"]),
                       .vsim(VSimRequest(key: "items", input: .foldIn(items: ["a", "b"], weights: nil), count: 3)))
        XCTAssertEqual(try parse(["VSIM", "items", "foldin", "2", "a", "b", "weights", "5", "0.5", "WITHSCORES"]),
                       .vsim(VSimRequest(key: "items", input: .foldIn(items: ["a", "b"], weights: [5, 0.5]), withScores: true)))
        assertSyntaxError(["VSIM", "k", "FOLDIN"], containing: "FOLDIN needs a count")
        assertSyntaxError(["VSIM", "k", "FOLDIN", "0", "a"], containing: "FOLDIN needs a count")
        assertSyntaxError(["VSIM", "k", "FOLDIN", "x"], containing: "FOLDIN must be an integer")
        assertSyntaxError(["VSIM", "k", "FOLDIN", "9223372036854775807", "a"], containing: "fewer were given")
        assertSyntaxError(["VSIM", "k", "FOLDIN", "2", "a", "b", "WEIGHTS", "1"], containing: "one weight per FOLDIN item")
        assertSyntaxError(["VSIM", "k", "FOLDIN", "1", "a", "WEIGHTS", "nan"], containing: "not a finite number")
        assertSyntaxError(["VSIM", "k", "FOLDIN", "1", "a", "WEIGHTS", "-1"], containing: "not a finite number")
    }

    func testVCreate() throws {
        XCTAssertEqual(try parse(["VCREATE", "items", "DIM", "64", "METRIC", "ip"]),
                       .vcreate(key: "items", dimension: 64, metric: .ip, index: .flat))
        XCTAssertEqual(try parse(["VCREATE", "items", "DIM", "4", "MODEL", "{\"method\":\"ials\"}"]),
                       .vcreate(key: "items", dimension: 4, metric: .cosine, index: .flat, model: "{\"method\":\"ials\"}"))
        XCTAssertEqual(try parse(["VCREATE", "x", "DIM", "8", "INDEX", "hnsw", "M", "32", "EF_CONSTRUCTION", "100"]),
                       .vcreate(key: "x", dimension: 8, metric: .cosine, index: IndexSpec(kind: .hnsw, m: 32, efConstruction: 100)))
        assertSyntaxError(["VCREATE", "x", "METRIC", "IP"], containing: "needs DIM")
        assertSyntaxError(["VCREATE", "x", "DIM", "3", "METRIC", "HAMMING"], containing: "unknown METRIC")
        assertSyntaxError(["VCREATE", "x", "DIM", "3", "METRIC"], containing: "needs a value")
    }

    func testArityAndUnknownCommands() {
        assertError(["FROB", "x"], .unknownCommand("FROB"))
        assertError(["VREM", "k"], .wrongArity("vrem"))
        assertError(["VCARD"], .wrongArity("vcard"))
        assertError(["ECHO"], .wrongArity("echo"))
        XCTAssertEqual(CommandError.wrongArity("vadd").message, "wrong number of arguments for 'vadd' command")
        XCTAssertEqual(CommandError.unknownCommand("x").message, "unknown command 'x'")
    }

    func testConnectionCommands() throws {
        XCTAssertEqual(try parse(["PING"]), .ping(nil))
        XCTAssertEqual(try parse(["AUTH", "default", "pw"]), .auth(user: "default", password: Array("pw".utf8)))
        XCTAssertEqual(try parse(["CONFIG", "GET", "save"]), .configGet(["save"]))
        XCTAssertEqual(try parse(["COMMAND", "DOCS"]), .command(subcommand: "docs"))
        XCTAssertEqual(try parse(["CLIENT", "SETINFO", "LIB-NAME", "redis-py"]), .client(subcommand: "setinfo", arguments: ["LIB-NAME", "redis-py"]))
        XCTAssertEqual(try parse(["SELECT", "0"]), .select(0))
        XCTAssertEqual(try parse(["HELLO", "3"]), .hello(protocolVersion: 3, auth: nil, setName: nil))
        XCTAssertEqual(try parse(["HELLO", "2", "AUTH", "default", "pw", "SETNAME", "me"]),
                       .hello(protocolVersion: 2, auth: Credentials(user: "default", password: Array("pw".utf8)), setName: "me"))
        XCTAssertThrowsError(try parse(["HELLO", "2", "AUTH", "default"]))
    }
}
