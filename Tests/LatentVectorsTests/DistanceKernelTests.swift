import Foundation
import LatentIndex
import LatentVectors
import XCTest

final class DistanceKernelTests: XCTestCase {
    private func naiveDot(_ a: [Float], _ b: [Float]) -> Double { zip(a, b).reduce(0) { $0 + Double($1.0) * Double($1.1) } }
    private func naiveL2(_ a: [Float], _ b: [Float]) -> Double { zip(a, b).reduce(0) { $0 + pow(Double($1.0) - Double($1.1), 2) } }

    func testKernelsMatchNaiveSumsForEveryTailLength() {
        var rng = SeededRandom(seed: 1)
        for n in Array(1...80) + [127, 128, 129, 384, 784, 4096] {
            let a = rng.vector(n), b = rng.vector(n)
            let dot = DistanceKernels.dot(a, b, n)
            let l2 = DistanceKernels.l2Squared(a, b, n)
            let tolerance = 1e-4 * Double(n).squareRoot() + 1e-6
            XCTAssertEqual(Double(dot), naiveDot(a, b), accuracy: tolerance, "dot n=\(n)")
            XCTAssertEqual(Double(l2), naiveL2(a, b), accuracy: tolerance * 4, "l2 n=\(n)")
        }
    }

    func testMetricDistancesAndScores() {
        let a: [Float] = [1, 0, 0], b: [Float] = [0, 2, 0], c: [Float] = [-3, 0, 0]
        func d(_ m: Metric, _ x: [Float], _ y: [Float]) -> Float {
            DistanceKernels.distance(m, x, y, 3, invNormA: DistanceKernels.inverseNorm(x, 3), invNormB: DistanceKernels.inverseNorm(y, 3))
        }
        XCTAssertEqual(Metric.cosine.score(fromDistance: d(.cosine, a, a)), 1, accuracy: 1e-6)
        XCTAssertEqual(Metric.cosine.score(fromDistance: d(.cosine, a, b)), 0.5, accuracy: 1e-6)
        XCTAssertEqual(Metric.cosine.score(fromDistance: d(.cosine, a, c)), 0, accuracy: 1e-6)
        // Regression (redis-py's test_vsim_with_scores saw 1.0000001 in CI): rounding past the range is clamped.
        XCTAssertEqual(Metric.cosine.score(fromDistance: -2.4e-7), 1)
        XCTAssertEqual(Metric.cosine.score(fromDistance: 2.0000002), 0)
        XCTAssertEqual(Metric.l2.score(fromDistance: -1e-9), 0)
        XCTAssertEqual(Metric.l2.score(fromDistance: d(.l2, a, b)), 5.0.squareRoot(), accuracy: 1e-6)
        XCTAssertEqual(Metric.ip.score(fromDistance: d(.ip, a, c)), -3, accuracy: 1e-6)
        XCTAssertEqual(DistanceKernels.inverseNorm([0, 0, 0], 3), 0)
    }

    func testTopKKeepsTheBestAndBreaksTiesWithTheGivenOrder() {
        var rng = SeededRandom(seed: 2)
        let distances = (0..<500).map { _ in Float(Int.random(in: 0..<50, using: &rng)) }
        for k in [1, 7, 64, 500, 1000] {
            var top = TopK(k: k, ranksBefore: { $0 > $1 }) // ties: higher slot first
            for (i, d) in distances.enumerated() { top.push(UInt32(i), d) }
            let expected = distances.enumerated().sorted { ($0.element, -$0.offset) < ($1.element, -$1.offset) }.prefix(k)
            XCTAssertEqual(top.sorted().map(\.slot), expected.map { UInt32($0.offset) }, "k=\(k)")
        }
    }

    func testVectorBufferGrowsReusesAndTracksLiveness() {
        let buffer = VectorBuffer(dimension: 3, initialCapacity: 16)
        var rng = SeededRandom(seed: 3)
        var stored: [[Float]] = []
        for slot in 0..<100 {
            let v = rng.vector(3)
            stored.append(v)
            buffer.set(slot: slot, v)
        }
        XCTAssertEqual(buffer.liveCount, 100)
        XCTAssertGreaterThanOrEqual(buffer.capacity, 100)
        XCTAssertEqual(Int(bitPattern: UnsafeRawPointer(buffer.vector(0))) % VectorBuffer.alignment, 0)
        for slot in 0..<100 { XCTAssertEqual(buffer.copyVector(slot), stored[slot]) }
        buffer.clear(slot: 10)
        buffer.clear(slot: 10)
        XCTAssertEqual(buffer.liveCount, 99)
        XCTAssertFalse(buffer.isLive(10))
        buffer.set(slot: 10, [1, 2, 3])
        XCTAssertTrue(buffer.isLive(10))
        XCTAssertEqual(buffer.copyVector(10), [1, 2, 3])
        buffer.set(slot: 150, [1, 1, 1])
        XCTAssertFalse(buffer.isLive(120), "skipped slots stay dead")
        XCTAssertEqual(buffer.slotCount, 151)
    }
}

final class FlatIndexTests: XCTestCase {
    /// Exact search must equal a plain sort of every distance computed in Double, for every metric.
    func testFlatSearchMatchesNaiveReferenceForAllMetrics() {
        var rng = SeededRandom(seed: 42)
        let dim = 37, n = 2000
        for metric in Metric.allCases {
            let buffer = VectorBuffer(dimension: dim)
            var vectors: [[Float]] = []
            for slot in 0..<n {
                let v = rng.vector(dim)
                vectors.append(v)
                buffer.set(slot: slot, v)
            }
            for slot in stride(from: 0, to: n, by: 7) { buffer.clear(slot: slot) }
            let index = FlatIndex(metric: metric, buffer: buffer)
            for _ in 0..<20 {
                let q = rng.vector(dim)
                let found = q.withUnsafeBufferPointer {
                    index.search($0.baseAddress!, SearchParameters(k: 10))
                }
                let reference = (0..<n).filter { $0 % 7 != 0 }.map { ($0, naiveDistance(metric, q, vectors[$0])) }
                    .sorted { $0.1 < $1.1 }.prefix(10)
                XCTAssertEqual(found.map { Int($0.slot) }, reference.map(\.0), "\(metric)")
                for (f, r) in zip(found, reference) { XCTAssertEqual(Double(f.distance), r.1, accuracy: 1e-4) }
            }
        }
    }

    func testTiesAreOrderedByTheCollectionsOrder() {
        let buffer = VectorBuffer(dimension: 2)
        for slot in 0..<5 { buffer.set(slot: slot, [1, 1]) }
        let found = [Float(1), 1].withUnsafeBufferPointer {
            FlatIndex.scan($0.baseAddress!, in: buffer, metric: .l2, k: 3, ranksBefore: { $0 > $1 })
        }
        XCTAssertEqual(found.map(\.slot), [4, 3, 2])
    }

    private func naiveDistance(_ m: Metric, _ a: [Float], _ b: [Float]) -> Double {
        let dot = zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        switch m {
        case .ip: return -dot
        case .l2: return zip(a, b).reduce(0.0) { $0 + pow(Double($1.0) - Double($1.1), 2) }
        case .cosine:
            let na = a.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            let nb = b.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            return 1 - dot / (na * nb)
        }
    }
}
