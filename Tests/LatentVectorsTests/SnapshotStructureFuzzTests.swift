import Foundation
@testable import LatentIndex
import LatentVectors
import XCTest

/// A structure fuzzer for index snapshots: valid HNSW and IVF snapshots are mutated at random (bytes
/// flipped, words set to boundary values, cut short, regions repeated) and their checksum recomputed,
/// so the decoder's own structural checks are what stands between the bytes and a search. Every
/// mutant must either be refused with a SnapshotError or load into an index that searches, takes
/// inserts and deletes, and repairs, without crashing or going out of bounds.
final class SnapshotStructureFuzzTests: XCTestCase {
    private let dim = 6

    private func hnswSnapshot() -> [UInt8] {
        let data = clustered(260, dim: dim, seed: 71)
        let index = HNSWIndex(metric: .l2, dimension: dim, m: 4, efConstruction: 16)
        data.withUnsafeBufferPointer { p in
            for i in 0..<250 { index.add(slot: UInt32(i), vector: p.baseAddress! + i * dim) }
            for s in stride(from: 0, to: 250, by: 7) { index.remove(slot: UInt32(s)) }
            index.repairAll()
            for s in stride(from: 3, to: 250, by: 11) { index.remove(slot: UInt32(s)) }
            for i in 250..<260 { index.add(slot: UInt32(i), vector: p.baseAddress! + i * dim) }
        }
        return IndexSnapshot.encode(index)!
    }

    private func ivfSnapshot() -> [UInt8] {
        let data = clustered(400, dim: dim, seed: 73)
        let index = data.withUnsafeBufferPointer { p in
            IVFFlatIndex.build(metric: .cosine, dimension: dim, slots: (0..<UInt32(400)).map { $0 }, vectors: p.baseAddress!,
                               nlist: 8, threads: 1)!
        }
        return IndexSnapshot.encode(index)!
    }

    private func mutate(_ valid: [UInt8], _ rng: inout SeededRandom) -> [UInt8] {
        var body = Array(valid.dropLast(8))
        // Past the 18-byte header, so most mutants reach the payload decoders.
        let start = 18
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            switch Int.random(in: 0..<5, using: &rng) {
            case 0:
                let i = Int.random(in: start..<body.count, using: &rng)
                body[i] ^= UInt8.random(in: 1...255, using: &rng)
            case 1, 2:
                let i = Int.random(in: start..<(body.count - 4), using: &rng) & ~3
                let word: UInt32 = [0, 1, 2, 31, 32, 255, 256, 259, 260, 0x7FFF_FFFF, 0xFFFF_FFFF, UInt32.random(in: 0...600, using: &rng)]
                    .randomElement(using: &rng)!
                withUnsafeBytes(of: word.littleEndian) { body.replaceSubrange(i..<(i + 4), with: $0) }
            case 3:
                body.removeLast(Int.random(in: 1...min(64, body.count - start), using: &rng))
            default:
                let i = Int.random(in: start..<body.count, using: &rng)
                let n = min(Int.random(in: 1...32, using: &rng), body.count - i)
                body.insert(contentsOf: body[i..<(i + n)], at: i)
            }
        }
        withUnsafeBytes(of: Checksum64.of(body).littleEndian) { body.append(contentsOf: $0) }
        return body
    }

    private func exercise(_ index: VectorIndex, _ rng: inout SeededRandom) {
        for _ in 0..<4 {
            let q = (0..<dim).map { _ in Float.random(in: -1...1, using: &rng) }
            let hits = q.withUnsafeBufferPointer { index.search($0.baseAddress!, SearchParameters(k: 8, ef: 20, nprobe: 3)) }
            XCTAssertLessThanOrEqual(hits.count, 8)
        }
        for slot in index.indexedSlots.prefix(20) { index.remove(slot: slot) }
        for i in 0..<20 {
            let v = (0..<dim).map { _ in Float.random(in: -1...1, using: &rng) }
            v.withUnsafeBufferPointer { index.add(slot: UInt32(10_000 + i), vector: $0.baseAddress!) }
        }
        while index.repair(until: UInt64.max, idle: true) {}
        let q = [Float](repeating: 0.5, count: dim)
        _ = q.withUnsafeBufferPointer { index.search($0.baseAddress!, SearchParameters(k: 5)) }
    }

    func testMutatedSnapshotsAreRefusedOrSafe() {
        var rng = SeededRandom(seed: 2026)
        for (name, valid, metric) in [("HNSW", hnswSnapshot(), Metric.l2), ("IVF", ivfSnapshot(), Metric.cosine)] {
            var refused = 0, loaded = 0
            for _ in 0..<1_500 {
                let mutant = mutate(valid, &rng)
                do {
                    let index = try IndexSnapshot.decode(mutant, metric: metric, dimension: dim)
                    loaded += 1
                    exercise(index, &rng)
                    if let h = index as? HNSWIndex {
                        // What the decoder accepted must be structurally sound once repaired.
                        XCTAssertEqual(h.structuralProblems(), [], "\(name) mutant accepted with a broken structure")
                    }
                } catch is SnapshotError {
                    refused += 1
                } catch {
                    XCTFail("\(name): unexpected error \(error)")
                }
            }
            // Both outcomes occur: the mutations reach the structure checks and data-only changes load.
            print("snapshot fuzz \(name): \(refused) refused, \(loaded) loaded")
            XCTAssertGreaterThan(refused, 100, name)
            XCTAssertGreaterThan(loaded, 50, name)
        }
    }
}
