import ArgumentParser
import Foundation
import LatentIndex
import LatentVectors

/// In-process ANN benchmark on TEXMEX files (../shared/bench/make_datasets.py): build time with 1 and 2
/// threads, index memory, and recall@10 / single-thread QPS over an EF or NPROBE sweep, one query at a
/// time, as ../shared/bench/anchors.py measures hnswlib and FAISS.
struct ANNBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ann", abstract: "HNSW / IVF recall and QPS on .fvecs/.ivecs files.")

    @Option(help: "Directory with NAME_base.fvecs, NAME_query.fvecs, NAME_groundtruth.ivecs.")
    var data = "../bench-data"
    @Argument(help: "Dataset name, e.g. synth128 or mnist10k.")
    var dataset: String
    @Option(help: "hnsw or ivf.")
    var index = "hnsw"
    @Option var m = 16
    @Option var efConstruction = 200
    @Option(help: "IVF lists (default: round(4 sqrt(n)), as anchors.py).")
    var nlist: Int?
    @Option(parsing: .upToNextOption, help: "Build thread counts to time.")
    var threads: [Int] = [1, 2]
    @Option(parsing: .upToNextOption) var efs: [Int] = [10, 16, 32, 64, 128, 256, 512]
    @Option(parsing: .upToNextOption) var nprobes: [Int] = [1, 2, 4, 8, 16, 32, 64, 128]
    @Option(help: "Write the rows as JSON here.")
    var json: String?

    func run() throws {
        let base = try TexmexFile.readVectors("\(data)/\(dataset)_base.fvecs")
        let queries = try TexmexFile.readVectors("\(data)/\(dataset)_query.fvecs")
        let truth = try TexmexFile.readNeighbors("\(data)/\(dataset)_groundtruth.ivecs")
        let dim = base.dimension, n = base.count
        print("\(dataset): \(n) x \(dim), \(queries.count) queries, index \(index)")
        let slots = (0..<UInt32(n)).map { $0 }
        var built: VectorIndex?
        var buildRows: [[String: Any]] = []
        for t in threads {
            let rssBefore = residentBytes()
            let start = DispatchTime.now().uptimeNanoseconds
            let idx: VectorIndex = base.values.withUnsafeBufferPointer { p in
                if index == "ivf" {
                    return IVFFlatIndex.build(metric: .l2, dimension: dim, slots: slots, vectors: p.baseAddress!,
                                              nlist: nlist ?? Int((4 * Double(n).squareRoot()).rounded()), threads: t)!
                }
                let h = HNSWIndex(metric: .l2, dimension: dim, m: m, efConstruction: efConstruction, capacity: n)
                _ = h.build(slots: slots, vectors: p.baseAddress!, threads: t)
                return h
            }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            print(String(format: "build %d thread(s): %.2f s, index memory %.1f MB (RSS +%.1f MB)", t, seconds,
                         Double(idx.memoryBytes) / 1e6, Double(residentBytes() - rssBefore) / 1e6))
            if let h = idx as? HNSWIndex { print("  nodes without incoming layer-0 links: \(h.unreferencedNodes)") }
            buildRows.append(["threads": t, "seconds": seconds, "memory_bytes": idx.memoryBytes])
            built = idx
        }
        guard let idx = built else { return }
        var rows: [[String: Any]] = []
        let sweep = index == "ivf" ? nprobes : efs
        print(index == "ivf" ? "nprobe  recall@10        QPS" : "    ef  recall@10        QPS")
        for value in sweep {
            let params = index == "ivf" ? SearchParameters(k: 10, nprobe: value) : SearchParameters(k: 10, ef: value)
            var hits = 0
            var results: [[Neighbor]] = []
            results.reserveCapacity(queries.count)
            // Warm-up pass, then three timed passes (one query per call on this thread); the median
            // counts, as anchors.py reports it.
            for q in 0..<min(100, queries.count) { _ = queries.withRow(q) { idx.search($0, params) } }
            var times: [Double] = []
            for _ in 0..<3 {
                results.removeAll(keepingCapacity: true)
                let start = DispatchTime.now().uptimeNanoseconds
                for q in 0..<queries.count { results.append(queries.withRow(q) { idx.search($0, params) }) }
                times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            }
            let seconds = times.sorted()[1]
            for (q, found) in results.enumerated() {
                let expected = Set(truth[q].prefix(10))
                hits += found.prefix(10).filter { expected.contains(Int32($0.slot)) }.count
            }
            let recall = Double(hits) / Double(queries.count * 10)
            let qps = Double(queries.count) / seconds
            let reps = times.map { String(format: "%.0f", Double(queries.count) / $0) }.joined(separator: " ")
            print(String(format: "%6d  %9.4f  %9.0f   (passes: %@)", value, recall, qps, reps))
            rows.append([index == "ivf" ? "nprobe" : "ef": value, "recall": recall, "qps": qps])
        }
        if let json {
            let out: [String: Any] = ["dataset": dataset, "index": index, "builds": buildRows, "sweep": rows,
                                      "date": ISO8601DateFormatter().string(from: Date())]
            try JSONSerialization.data(withJSONObject: out, options: [.prettyPrinted, .sortedKeys]).write(to: URL(fileURLWithPath: json))
        }
    }

    private func residentBytes() -> Int {
        guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let f = statm.split(separator: " ")
        return f.count > 1 ? (Int(f[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE))) : 0
    }
}

/// TEXMEX .fvecs / .ivecs: per row an int32 count, then that many float32 / int32, little-endian.
struct TexmexFile {
    var dimension: Int
    var count: Int
    var values: [Float]

    func withRow<T>(_ i: Int, _ body: (UnsafePointer<Float>) -> T) -> T {
        values.withUnsafeBufferPointer { body($0.baseAddress! + i * dimension) }
    }

    static func readVectors(_ path: String) throws -> TexmexFile {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return try data.withUnsafeBytes { raw in
            guard raw.count >= 4 else { throw ValidationError("\(path) is empty") }
            let dim = Int(Int32(littleEndian: raw.loadUnaligned(as: Int32.self)))
            let row = 4 + dim * 4
            guard dim > 0, raw.count % row == 0 else { throw ValidationError("\(path) is not an .fvecs file of dimension \(dim)") }
            let n = raw.count / row
            var values = [Float](repeating: 0, count: n * dim)
            for r in 0..<n {
                for d in 0..<dim {
                    values[r * dim + d] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: r * row + 4 + d * 4, as: UInt32.self)))
                }
            }
            return TexmexFile(dimension: dim, count: n, values: values)
        }
    }

    static func readNeighbors(_ path: String) throws -> [[Int32]] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return data.withUnsafeBytes { raw in
            var rows: [[Int32]] = []
            var offset = 0
            while offset + 4 <= raw.count {
                let k = Int(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: Int32.self)))
                rows.append((0..<k).map { Int32(littleEndian: raw.loadUnaligned(fromByteOffset: offset + 4 + $0 * 4, as: Int32.self)) })
                offset += 4 + k * 4
            }
            return rows
        }
    }
}
