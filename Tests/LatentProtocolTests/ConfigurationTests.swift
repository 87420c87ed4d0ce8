import Foundation
import LatentEngine
import LatentProtocol
@testable import LatentServer
import Logging
import NIOCore
import XCTest

/// latentd.conf parsing, flags' shared validation, CONFIG GET / SET / REWRITE.
final class ConfigurationTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "latentdb-config-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func write(_ name: String, _ text: String) -> String {
        let path = directory + "/" + name
        FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        return path
    }

    private func load(_ text: String) throws -> ServerConfiguration {
        var c = ServerConfiguration()
        try ConfigFile.apply(path: write("latentd.conf", text), to: &c)
        return c
    }

    private func assertFileError(_ text: String, line: Int, _ fragment: String, file: StaticString = #filePath, at: UInt = #line) {
        XCTAssertThrowsError(try load(text), file: file, line: at) { error in
            guard let e = error as? ConfigFileError else { return XCTFail("\(error)", file: file, line: at) }
            XCTAssertEqual(e.line, line, "\(e)", file: file, line: at)
            XCTAssertTrue(e.message.contains(fragment), "\(e)", file: file, line: at)
            XCTAssertTrue(e.description.hasPrefix(e.file + ":\(line): "), e.description, file: file, line: at)
        }
    }

    func testEveryDirectiveParses() throws {
        let c = try load("""
        # comment
        bind 0.0.0.0
        port 7400

        dir "/var/lib/latent db"
        requirepass 's3cret pass'
        appendfsync always
        maxclients 50
        timeout 30
        query-cache-mb 8
        proto-max-bulk-len 4096
        loglevel warning
        """)
        XCTAssertEqual(c.host, "0.0.0.0")
        XCTAssertEqual(c.port, 7400)
        XCTAssertEqual(c.dataDirectory, "/var/lib/latent db")
        XCTAssertEqual(c.password, "s3cret pass")
        XCTAssertEqual(c.fsync, .always)
        XCTAssertEqual(c.maxClients, 50)
        XCTAssertEqual(c.idleTimeoutSeconds, 30)
        XCTAssertEqual(c.queryCacheBytes, 8 << 20)
        XCTAssertEqual(c.limits.maxBulkBytes, 4096)
        XCTAssertEqual(c.logLevel, .warning)
        // Flag names work as directives too, and Redis' log level names are understood.
        XCTAssertEqual(try load("data-dir /x\nlog-level verbose\nfsync no\n").dataDirectory, "/x")
        XCTAssertEqual(try load("loglevel nothing").logLevel, .critical)
        XCTAssertEqual(try load("port 1\nport 2").port, 2, "the last value wins")
    }

    func testTheShippedExampleFileIsValidAndDocumentsEveryDirective() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let example = root.appendingPathComponent("tools/latentd.conf").path
        var c = ServerConfiguration()
        try ConfigFile.apply(path: example, to: &c)
        XCTAssertEqual(c, ServerConfiguration(), "the example states the defaults")
        let text = try String(contentsOfFile: example, encoding: .utf8)
        for d in ConfigSchema.directives {
            XCTAssertTrue(text.contains("[--\(d.flag)]"), "example lacks the flag of \(d.name)")
            XCTAssertTrue(text.contains("\n\(d.name) ") || text.contains("# \(d.name) "), "example lacks \(d.name)")
        }
    }

    func testBadLinesAreRefusedWithTheirLineNumber() {
        assertFileError("port 1\nfrobnicate yes\n", line: 2, "unknown directive 'frobnicate'")
        assertFileError("# c\n\nport 70000\n", line: 3, "port must be an integer in 0...65535")
        assertFileError("port\n", line: 1, "port takes one value")
        assertFileError("dir a b\n", line: 1, "takes one value")
        assertFileError("bind \"127.0.0.1\n", line: 1, "unbalanced quotes")
        assertFileError("appendfsync sometimes\n", line: 1, "always, everysec or no")
        assertFileError("maxclients 0\n", line: 1, "maxclients")
        assertFileError("query-cache-mb 9223372036854775807\n", line: 1, "query-cache-mb")
        assertFileError("proto-max-bulk-len 9223372036854775807\n", line: 1, "proto-max-bulk-len")
        assertFileError("loglevel loud\n", line: 1, "loglevel must be")
        assertFileError("timeout -1\n", line: 1, "timeout")
    }

    func testIncludeIsRelativeToTheIncludingFileAndLoopsAreRefused() throws {
        try FileManager.default.createDirectory(atPath: directory + "/conf.d", withIntermediateDirectories: true)
        _ = write("conf.d/net.conf", "port 7500\n")
        let c = try load("port 1\ninclude conf.d/net.conf\nmaxclients 9\n")
        XCTAssertEqual(c.port, 7500)
        XCTAssertEqual(c.maxClients, 9)
        _ = write("a.conf", "include b.conf\n")
        _ = write("b.conf", "include a.conf\n")
        var d = ServerConfiguration()
        XCTAssertThrowsError(try ConfigFile.apply(path: directory + "/a.conf", to: &d)) { XCTAssertTrue("\($0)".contains("include loop")) }
        XCTAssertThrowsError(try load("include missing.conf\n")) { XCTAssertTrue("\($0)".contains("cannot read")) }
    }

    func testConfigGetSetRewriteRoundTrip() throws {
        let path = write("latentd.conf", "# my settings\nport 7401\nmaxclients 100\nmaxclients 200\n\nloglevel info\n")
        var initial = ServerConfiguration()
        try ConfigFile.apply(path: path, to: &initial)
        let catalog = try CollectionCatalog(directory: directory + "/data", fsync: .no)
        defer { catalog.close() }
        let settings = RuntimeConfiguration(initial, configFile: path)
        let e = CommandExecutor(catalog: catalog, settings: settings)
        let s = Session(id: 1, authenticated: true)
        func run(_ args: String...) -> RESPValue { e.execute(batch: [args.map { ByteBuffer(string: $0) }], session: s)[0].reply }
        func pairs(_ v: RESPValue) -> [String: String] {
            guard case .map(let items) = v else { return [:] } // a map in RESP3, flat pairs in RESP2
            let strings = items.map { item -> String in if case .bulkString(let b) = item { return String(buffer: b) } else { return "" } }
            return Dictionary(uniqueKeysWithValues: stride(from: 0, to: strings.count, by: 2).map { (strings[$0], strings[$0 + 1]) })
        }
        XCTAssertEqual(pairs(run("CONFIG", "GET", "port")), ["port": "7401"])
        XCTAssertEqual(pairs(run("CONFIG", "GET", "max*")), ["maxclients": "200"])
        XCTAssertEqual(pairs(run("CONFIG", "GET", "*")).count, ConfigSchema.directives.count + 3)
        // Runtime settings change at once; all-or-nothing; immutable ones are refused with the way out.
        XCTAssertEqual(run("CONFIG", "SET", "maxclients", "300", "query-cache-mb", "1", "loglevel", "debug"), .ok)
        XCTAssertEqual(e.configuration.maxClients, 300)
        XCTAssertEqual(e.cache.capacityBytes, 1 << 20)
        XCTAssertEqual(e.configuration.logLevel, .debug)
        guard case .error(let immutable) = run("CONFIG", "SET", "port", "1") else { return XCTFail() }
        XCTAssertTrue(immutable.contains("can't set immutable config") && immutable.contains("--port"), immutable)
        XCTAssertTrue(run("CONFIG", "SET", "maxclients", "5", "timeout", "-3").isError)
        XCTAssertEqual(e.configuration.maxClients, 300, "a failed CONFIG SET changes nothing")
        XCTAssertTrue(run("CONFIG", "SET", "nosuch", "1").isError)
        XCTAssertTrue(run("CONFIG", "SET", "maxclients").isError)
        // REWRITE: changed lines in place, duplicates dropped, comments kept, new non-defaults appended.
        XCTAssertEqual(run("CONFIG", "REWRITE"), .ok)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertTrue(text.hasPrefix("# my settings\nport 7401\nmaxclients 300\n\nloglevel debug\n"), text)
        XCTAssertTrue(text.contains("query-cache-mb 1"), text)
        var reread = ServerConfiguration()
        try ConfigFile.apply(path: path, to: &reread)
        XCTAssertEqual(reread, e.configuration)
        // Without a file, REWRITE says so, as Redis does.
        let noFile = CommandExecutor(catalog: catalog, configuration: ServerConfiguration())
        XCTAssertEqual(noFile.execute(batch: [["CONFIG", "REWRITE"].map { ByteBuffer(string: $0) }], session: s)[0].reply,
                       .err("The server is running without a config file"))
    }

    func testQuotedValuesSurviveRewrite() throws {
        let path = write("q.conf", "requirepass \"a b#c\\\"d\"\n")
        var c = ServerConfiguration()
        try ConfigFile.apply(path: path, to: &c)
        XCTAssertEqual(c.password, "a b#c\"d")
        try ConfigFile.rewrite(path: path, with: c)
        var again = ServerConfiguration()
        try ConfigFile.apply(path: path, to: &again)
        XCTAssertEqual(again.password, "a b#c\"d")
    }

    func testBuildInfoIsReported() {
        let text = BuildInfo.versionText(program: "latentd")
        XCTAssertTrue(text.hasPrefix("latentd \(BuildInfo.version)\n"))
        for field in ["git commit:", "built:", "rocksdb:", "distance kernels:"] { XCTAssertTrue(text.contains(field), text) }
    }
}
