import Foundation
import LatentEngine
import LatentStorage
import LatentProtocol
@testable import LatentServer
import NIOCore
import XCTest

/// SLOWLOG, INFO commandstats / latencystats and CONFIG RESETSTAT, against Redis' shapes.
final class SlowLogAndCommandStatsTests: CatalogTestCase {

    private func executor(slowerThan: Int, maxLength: Int = 128, password: String? = nil) -> CommandExecutor {
        var config = ServerConfiguration()
        config.slowlogSlowerThanMicroseconds = slowerThan
        config.slowlogMaxLength = maxLength
        config.password = password
        return CommandExecutor(catalog: catalog, configuration: config)
    }

    private func run(_ e: CommandExecutor, _ s: Session, _ words: [String]) -> RESPValue {
        e.execute(batch: [words.map { ByteBuffer(string: $0) }], session: s)[0].reply.asSeenByRESP2
    }

    private func run(_ e: CommandExecutor, _ s: Session, _ line: String) -> RESPValue {
        run(e, s, line.split(separator: " ").map(String.init))
    }

    /// The argument lists of SLOWLOG GET's entries, newest first.
    private func loggedArguments(_ reply: RESPValue) -> [[String]] {
        guard case .array(let entries) = reply else { return [] }
        return entries.map { entry in
            guard case .array(let fields) = entry, fields.count == 6, case .array(let args) = fields[3] else { return ["?"] }
            return args.map { if case .bulkString(let b) = $0 { return String(buffer: b) } else { return "?" } }
        }
    }

    private func infoLines(_ e: CommandExecutor, _ s: Session, _ section: String) -> [String: String] {
        guard case .bulkString(let b) = run(e, s, "INFO \(section)") else { return [:] }
        var lines: [String: String] = [:]
        for line in String(buffer: b).split(separator: "\r\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2 { lines[String(parts[0])] = String(parts[1]) }
        }
        return lines
    }

    func testThresholdZeroLogsEveryCommandNewestFirstWithRedisEntryShape() {
        let e = executor(slowerThan: 0), s = Session(id: 1, authenticated: true)
        s.name = "worker-1"
        XCTAssertEqual(run(e, s, "VADD k VALUES 2 1 0 a"), .integer(1))
        XCTAssertEqual(run(e, s, "VSIM k VALUES 2 1 1"), .array([.bulk("a")]))
        XCTAssertEqual(run(e, s, "NOSUCHCOMMAND x"), .err("unknown command 'NOSUCHCOMMAND'"))
        // The unknown command never ran: not logged. SLOWLOG itself is (Redis logs it too).
        XCTAssertEqual(loggedArguments(run(e, s, "SLOWLOG GET")), [["VSIM", "k", "VALUES", "2", "1", "1"], ["VADD", "k", "VALUES", "2", "1", "0", "a"]])
        guard case .array(let entries) = run(e, s, "SLOWLOG GET 1"), case .array(let f) = entries.first else {
            return XCTFail("SLOWLOG GET 1 is not an array of entries")
        }
        XCTAssertEqual(entries.count, 1)
        XCTAssertEqual(f[0], .integer(2), "ids count from 0: VADD, VSIM, then the first SLOWLOG GET")
        guard case .integer(let when) = f[1], case .integer(let micros) = f[2] else { return XCTFail("\(f)") }
        XCTAssertLessThanOrEqual(abs(when - Int(Date().timeIntervalSince1970)), 5)
        XCTAssertGreaterThanOrEqual(micros, 0)
        XCTAssertEqual(f[4], .bulk(""), "no connection in this test, so no address")
        XCTAssertEqual(f[5], .bulk("worker-1"))
        XCTAssertEqual(run(e, s, "SLOWLOG LEN"), .integer(4))
        XCTAssertEqual(loggedArguments(run(e, s, "SLOWLOG GET -1")).count, 5)
        XCTAssertEqual(run(e, s, "SLOWLOG RESET"), .ok)
        // RESET empties the log; RESET itself is recorded after it ran, as in Redis.
        XCTAssertEqual(loggedArguments(run(e, s, "SLOWLOG GET")), [["SLOWLOG", "RESET"]])
    }

    func testNegativeThresholdLogsNothingAndMaxLengthKeepsTheNewest() {
        let off = executor(slowerThan: -1), s = Session(id: 1, authenticated: true)
        for i in 0..<5 { _ = run(off, s, "VADD k VALUES 2 1 \(i) e\(i)") }
        XCTAssertEqual(run(off, s, "SLOWLOG LEN"), .integer(0))

        let e = executor(slowerThan: 0, maxLength: 3)
        for i in 0..<5 { _ = run(e, s, "VADD k VALUES 2 1 \(i) e\(i)") }
        XCTAssertEqual(loggedArguments(run(e, s, "SLOWLOG GET")).map { $0.last! }, ["e4", "e3", "e2"])
        // Lowering slowlog-max-len at run time drops the oldest at once.
        XCTAssertEqual(run(e, s, "CONFIG SET slowlog-max-len 1"), .ok)
        XCTAssertEqual(run(e, s, "SLOWLOG LEN"), .integer(1))
        XCTAssertEqual(run(e, s, "CONFIG SET slowlog-log-slower-than -1"), .ok)
        _ = run(e, s, "VADD k VALUES 2 9 9 late")
        XCTAssertEqual(loggedArguments(run(e, s, "SLOWLOG GET")).first?.first, "CONFIG", "nothing logged once disabled")
        XCTAssertEqual(run(e, s, "CONFIG SET slowlog-log-slower-than -2"),
                       .err("CONFIG SET failed (possibly related to argument 'slowlog-log-slower-than') - slowlog-log-slower-than must be an integer in -1...2147483647, got '-2'"))
    }

    func testLongRequestsAreShortenedAsRedisDoes() {
        let e = executor(slowerThan: 0), s = Session(id: 1, authenticated: true)
        let long = String(repeating: "x", count: 200)
        _ = run(e, s, ["ECHO", long])
        let manyValues = (0..<40).map { "\($0)" }
        _ = run(e, s, ["VADD", "k", "VALUES", "40"] + manyValues + ["a"])
        let logged = loggedArguments(run(e, s, "SLOWLOG GET 2"))
        XCTAssertEqual(logged[0].count, 32)
        XCTAssertEqual(Array(logged[0].prefix(4)), ["VADD", "k", "VALUES", "40"])
        XCTAssertEqual(logged[0][30], "26")
        XCTAssertEqual(logged[0][31], "... (14 more arguments)")
        XCTAssertEqual(logged[1], ["ECHO", String(repeating: "x", count: 128) + "... (72 more bytes)"])
    }

    func testCommandStatsAndLatencyStatsInRedisFormat() throws {
        let e = executor(slowerThan: -1, password: "pw"), s = Session(id: 1, authenticated: false)
        XCTAssertEqual(run(e, s, "VCARD k").errorCode, "NOAUTH")
        XCTAssertEqual(run(e, s, "AUTH pw"), .ok)
        XCTAssertEqual(run(e, s, "VADD k VALUES 2 1 0 a"), .integer(1))
        XCTAssertEqual(run(e, s, "VADD k VALUES 3 1 0 0 b").errorCode, "ERR")
        for _ in 0..<3 { _ = run(e, s, "VCARD k") }
        let stats = infoLines(e, s, "commandstats")
        let vadd = try XCTUnwrap(stats["cmdstat_vadd"])
        let pattern = #"^calls=2,usec=(\d+),usec_per_call=(\d+\.\d\d),rejected_calls=0,failed_calls=1$"#
        XCTAssertNotNil(vadd.range(of: pattern, options: .regularExpression), vadd)
        XCTAssertTrue(stats["cmdstat_vcard"]?.hasPrefix("calls=3,") == true, "\(stats)")
        XCTAssertTrue(stats["cmdstat_vcard"]?.hasSuffix(",rejected_calls=1,failed_calls=0") == true, "\(stats)")
        let latency = infoLines(e, s, "latencystats")
        let line = try XCTUnwrap(latency["latency_percentiles_usec_vcard"])
        XCTAssertNotNil(line.range(of: #"^p50=\d+\.\d{3},p99=\d+\.\d{3},p99\.9=\d+\.\d{3}$"#, options: .regularExpression), line)
        XCTAssertNil(infoLines(e, s, "default")["cmdstat_vadd"], "not a default section, as in Redis")
        XCTAssertEqual(run(e, s, "CONFIG RESETSTAT"), .ok)
        XCTAssertNil(infoLines(e, s, "commandstats")["cmdstat_vadd"])
    }

    func testRecordedTimesAreTheCommandsOwn() {
        // An exact scan over 2,000 x 256 must be charged more time than a PING.
        let e = executor(slowerThan: -1), s = Session(id: 1, authenticated: true)
        _ = run(e, s, "VCREATE big DIM 256")
        let vector = (0..<256).map { _ in "0.5" }
        var batch: [[ByteBuffer]] = []
        for i in 0..<2000 { batch.append((["VADD", "big", "VALUES", "256"] + vector + ["e\(i)"]).map { ByteBuffer(string: $0) }) }
        _ = e.execute(batch: batch, session: s)
        for _ in 0..<50 { _ = run(e, s, "VSIM big VALUES 256 " + vector.joined(separator: " ") + " COUNT 10 TRUTH") }
        for _ in 0..<50 { _ = run(e, s, "PING") }
        let stats = e.stats.commands
        XCTAssertEqual(stats["vadd"]?.calls, 2000)
        XCTAssertEqual(stats["vsim"]?.calls, 50)
        let vsimMedian = stats["vsim"]!.latency.valueAtPercentile(50), pingMedian = stats["ping"]!.latency.valueAtPercentile(50)
        XCTAssertGreaterThan(vsimMedian, pingMedian, "an exact scan of 2,000 x 256 takes longer than PING")
    }
}
