import Foundation
@testable import LatentEngine
import LatentIndex
import LatentVectors
import XCTest

/// Background index builds: every acknowledged write is searchable at once, deletes are never returned,
/// rebuilds swap in without stopping reads or writes.
final class IndexMaintenanceTests: XCTestCase {
    private var directory = ""

    override func setUp() {
        directory = NSTemporaryDirectory() + "latentdb-index-\(UUID().uuidString)"
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func vector(_ i: Int, dim: Int) -> [Float] {
        (0..<dim).map { d in Float(sin(Double(i * 31 + d * 7))) + Float(i % 17) * 0.1 }
    }

    private func waitForIndex(_ c: LatentEngine.Collection, timeout: TimeInterval = 60) {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let info = Dictionary(c.info(), uniquingKeysWith: { a, _ in a })
            if info["index-state"] == "ready" && info["pending"] == "0" { return }
            Thread.sleep(forTimeInterval: 0.05)
        }
        XCTFail("index did not become ready: \(c.info())")
    }

    func testWritesAreVisibleImmediatelyWhileTheIndexBuilds() throws {
        for kind in [IndexSpec.Kind.hnsw, .ivf] {
            let catalog = try CollectionCatalog(directory: directory + "-\(kind)", fsync: .no)
            defer { catalog.close(); try? FileManager.default.removeItem(atPath: directory + "-\(kind)") }
            let dim = 16
            let c = try catalog.create(name: "c", dimension: dim, metric: .l2, index: IndexSpec(kind: kind))
            // Every acknowledged write must be the top hit for its own vector, whatever the index is doing.
            for i in 0..<12_000 {
                try c.upsert(id: "e\(i)", vector: vector(i, dim: dim))
                if i % 500 == 0 {
                    let hits = try c.search(vector(i, dim: dim), SearchParameters(k: 1, ef: 64, nprobe: 64))
                    XCTAssertEqual(hits.first?.id, "e\(i)", "\(kind): write \(i) not found at once")
                }
            }
            waitForIndex(c)
            let info = Dictionary(c.info(), uniquingKeysWith: { a, _ in a })
            XCTAssertEqual(info["index"], kind.rawValue)
            XCTAssertEqual(info["indexed"], "12000")
            // Deleted elements are never returned, in the index or in the tail.
            for i in stride(from: 0, to: 12_000, by: 10) { try c.remove(id: "e\(i)") }
            for i in stride(from: 0, to: 12_000, by: 1000) {
                let hits = try c.search(vector(i, dim: dim), SearchParameters(k: 20, ef: 100, nprobe: 32))
                XCTAssertFalse(hits.contains { $0.id == "e\(i)" }, "\(kind): deleted e\(i) returned")
                XCTAssertEqual(hits.count, 20)
            }
            // Replacing a vector moves the element.
            try c.upsert(id: "e5", vector: [Float](repeating: 50, count: dim))
            XCTAssertEqual(try c.search([Float](repeating: 50, count: dim), SearchParameters(k: 1)).first?.id, "e5")
        }
    }

    func testApproximateSearchAgreesWithExactOnMostResults() throws {
        let catalog = try CollectionCatalog(directory: directory, fsync: .no)
        defer { catalog.close() }
        let dim = 32
        let c = try catalog.create(name: "c", dimension: dim, metric: .cosine, index: IndexSpec(kind: .hnsw))
        for i in 0..<8000 { try c.upsert(id: "e\(i)", vector: vector(i, dim: dim)) }
        waitForIndex(c)
        var overlap = 0
        for q in 0..<50 {
            let query = vector(q * 97 + 5, dim: dim).map { $0 + 0.01 }
            let approx = Set(try c.search(query, SearchParameters(k: 10, ef: 128)).map(\.id))
            let exact = Set(try c.search(query, SearchParameters(k: 10), exact: true).map(\.id))
            overlap += approx.intersection(exact).count
        }
        XCTAssertGreaterThan(Double(overlap) / 500, 0.95)
    }

    func testRebuildWithNewParametersKeepsServing() throws {
        let catalog = try CollectionCatalog(directory: directory, fsync: .no)
        defer { catalog.close() }
        let dim = 8
        let c = try catalog.create(name: "c", dimension: dim, metric: .ip)
        for i in 0..<6000 { try c.upsert(id: "e\(i)", vector: vector(i, dim: dim)) }
        try catalog.rebuild("c", spec: IndexSpec(kind: .hnsw, m: 8, efConstruction: 64))
        // Reads and writes go on during the build.
        for i in 6000..<6500 {
            try c.upsert(id: "e\(i)", vector: vector(i, dim: dim))
            XCTAssertEqual(try c.search(vector(i, dim: dim), SearchParameters(k: 1), exact: true).isEmpty, false)
        }
        waitForIndex(c)
        let info = Dictionary(c.info(), uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(info["index"], "HNSW")
        XCTAssertEqual(info["m"], "8")
        XCTAssertEqual(info["ef-construction"], "64")
        XCTAssertEqual(info["indexed"], "6500")
        // The new spec is stored: a reopened catalog builds the same index.
        catalog.close()
        let reopened = try CollectionCatalog(directory: directory, fsync: .no)
        XCTAssertEqual(try reopened.require("c").definition.index, IndexSpec(kind: .hnsw, m: 8, efConstruction: 64))
        waitForIndex(try reopened.require("c"))
        XCTAssertEqual(try reopened.require("c").count, 6500)
        reopened.close()
    }

    func testDropCancelsABuild() throws {
        let catalog = try CollectionCatalog(directory: directory, fsync: .no)
        defer { catalog.close() }
        let c = try catalog.create(name: "c", dimension: 64, metric: .l2)
        for i in 0..<20_000 { try c.upsert(id: "e\(i)", vector: vector(i, dim: 64)) }
        try catalog.rebuild("c", spec: IndexSpec(kind: .hnsw))
        XCTAssertTrue(try catalog.drop("c"))
        let started = Date()
        catalog.indexer.waitUntilIdle()
        XCTAssertLessThan(Date().timeIntervalSince(started), 20)
        XCTAssertNil(catalog.collection("c"))
    }
}
