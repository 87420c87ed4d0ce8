import Foundation
import LatentEngine
import LatentStorage
import LatentProtocol
@testable import LatentServer
import NIOCore
import XCTest

final class ResultCacheTests: XCTestCase {
    private let a = ResultCache.Dependency(collection: 7, version: 1)

    func testLRUEvictionByBytes() {
        let cache = ResultCache(capacityBytes: 1000)
        let reply = RESPValue.bulk(String(repeating: "x", count: 100)) // ~116 + key + 96 bytes per entry
        for i in 0..<10 { cache.store(Array("k\(i)".utf8), reply: reply, dependencies: [a]) }
        var s = cache.snapshot()
        XCTAssertLessThanOrEqual(s.bytes, 1000)
        XCTAssertGreaterThan(s.evictions, 0)
        XCTAssertNil(cache.lookup(Array("k0".utf8), current: [a]), "the oldest entry was evicted")
        XCTAssertEqual(cache.lookup(Array("k9".utf8), current: [a]), reply)
        // Touching an entry protects it from the next eviction.
        let survivor = Array("k\(10 - s.entries)".utf8)
        XCTAssertNotNil(cache.lookup(survivor, current: [a]))
        cache.store(Array("new".utf8), reply: reply, dependencies: [a])
        XCTAssertNotNil(cache.lookup(survivor, current: [a]))
        s = cache.snapshot()
        XCTAssertEqual(s.hits, 3)
        XCTAssertEqual(s.misses, 1)
    }

    func testAChangedDependencyIsNeverServed() {
        let cache = ResultCache(capacityBytes: 10_000)
        cache.store([1], reply: .integer(1), dependencies: [a])
        var newer = a
        newer.version = 2
        XCTAssertNil(cache.lookup([1], current: [newer]))
        XCTAssertNil(cache.lookup([1], current: [a]), "the stale entry was dropped")
        XCTAssertEqual(cache.snapshot().entries, 0)
    }

    func testKeysAreUnambiguous() {
        XCTAssertNotEqual(ResultCache.key([[1, 2], [3]]), ResultCache.key([[1], [2, 3]]))
    }
}

final class CachedSearchTests: CatalogTestCase {

    private func run(_ e: CommandExecutor, _ line: String) -> RESPValue {
        e.execute(batch: [line.split(separator: " ").map { ByteBuffer(string: String($0)) }], session: Session(id: 1, authenticated: true))[0].reply
    }

    func testWritesToEitherCollectionInvalidate() {
        var config = ServerConfiguration()
        config.queryCacheBytes = 1 << 20
        let e = CommandExecutor(catalog: catalog, configuration: config)
        _ = run(e, "VCREATE items DIM 2 METRIC IP")
        _ = run(e, "VADD items VALUES 2 1 0 a")
        _ = run(e, "VADD items VALUES 2 0 1 b")
        _ = run(e, "VADD users VALUES 2 1 0.1 u")
        let query = "VSIM items ELE u FROM users COUNT 1"
        XCTAssertEqual(run(e, query), .array([.bulk("a")]))
        XCTAssertEqual(run(e, query), .array([.bulk("a")]))
        XCTAssertEqual(e.cache.snapshot().hits, 1)
        _ = run(e, "VADD items VALUES 2 5 0 c")        // a write to the searched collection
        XCTAssertEqual(run(e, query), .array([.bulk("c")]))
        _ = run(e, "VADD users VALUES 2 0 1 u")        // a write to the FROM collection
        XCTAssertEqual(run(e, query), .array([.bulk("b")]))
        _ = run(e, "VDROP items")                       // drop and recreate under the same name
        _ = run(e, "VCREATE items DIM 2 METRIC IP")
        _ = run(e, "VADD items VALUES 2 0 1 z")
        XCTAssertEqual(run(e, query), .array([.bulk("z")]))
        guard case .verbatim(let info) = run(e, "INFO stats") else { return XCTFail() }
        XCTAssertTrue(info.contains("query_cache_hits:1"))
    }

    // Regression (issue 7): the cache identified collections by object address + version, so a collection
    // dropped and recreated under the same name (a new object, often at the freed address, with the same
    // number of writes) was served the old collection's answer.
    func testDropAndRecreateNeverServesTheOldCollectionsAnswer() {
        var config = ServerConfiguration()
        config.queryCacheBytes = 1 << 20
        let e = CommandExecutor(catalog: catalog, configuration: config)
        for round in 0..<50 {
            _ = run(e, "VCREATE items DIM 2 METRIC IP")
            _ = run(e, "VADD items VALUES 2 1 0 old\(round)")
            XCTAssertEqual(run(e, "VSIM items VALUES 2 1 0 COUNT 1"), .array([.bulk("old\(round)")]))
            _ = run(e, "VDROP items")
            _ = run(e, "VCREATE items DIM 2 METRIC IP")
            _ = run(e, "VADD items VALUES 2 1 0 new\(round)")
            XCTAssertEqual(run(e, "VSIM items VALUES 2 1 0 COUNT 1"), .array([.bulk("new\(round)")]), "round \(round)")
            _ = run(e, "VDROP items")
        }
    }

    func testZeroTurnsTheCacheOff() {
        var config = ServerConfiguration()
        config.queryCacheBytes = 0
        let e = CommandExecutor(catalog: catalog, configuration: config)
        _ = run(e, "VADD k VALUES 1 1 a")
        _ = run(e, "VSIM k VALUES 1 1")
        _ = run(e, "VSIM k VALUES 1 1")
        XCTAssertEqual(e.cache.snapshot().hits + e.cache.snapshot().misses, 0)
    }
}
