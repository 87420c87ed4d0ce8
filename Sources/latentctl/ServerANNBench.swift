import ArgumentParser
import Foundation

/// The ANN benchmark through a running latentd: loads a TEXMEX base set with pipelined FP32 VADDs,
/// waits for the index build, then measures recall@10 and QPS of VSIM from several pipelined
/// connections, for a sweep of EF or NPROBE.
struct ServerANNBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ann-server", abstract: "HNSW / IVF recall and QPS through latentd.")

    @Option var host = "127.0.0.1"
    @Option var port = 7379
    @Option var data = "../bench-data"
    @Argument var dataset: String
    @Option(help: "hnsw or ivf.") var index = "hnsw"
    @Option(help: "Collection name (default: the dataset's).") var collection: String?
    @Option(help: "Skip loading when the collection already holds the base set.") var reuse = false
    @Option var connections = 2
    @Option var pipeline = 16
    @Option(help: "Seconds to wait after the index is ready (snapshot write, RocksDB compaction).") var settle = 3.0
    @Option(parsing: .upToNextOption) var efs: [Int] = [16, 32, 64, 128]
    @Option(parsing: .upToNextOption) var nprobes: [Int] = [8, 16, 32, 64]

    func run() throws {
        let name = collection ?? "\(dataset)_\(index)"
        let base = try TexmexFile.readVectors("\(data)/\(dataset)_base.fvecs")
        let queries = try TexmexFile.readVectors("\(data)/\(dataset)_query.fvecs")
        let truth = try TexmexFile.readNeighbors("\(data)/\(dataset)_groundtruth.ivecs")
        let admin = try RESPConnection(host: host, port: port)
        if !reuse {
            _ = try admin.call(["VDROP", name])
            _ = try admin.call(["VCREATE", name, "DIM", String(base.dimension), "METRIC", "L2", "INDEX", index.uppercased()])
            let start = DispatchTime.now().uptimeNanoseconds
            try load(base, into: name)
            let s = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            print(String(format: "loaded %d x %d in %.1f s (%.0f vectors/s)", base.count, base.dimension, s, Double(base.count) / s))
        }
        let buildStart = DispatchTime.now().uptimeNanoseconds
        while true {
            let info = try fields(admin.call(["VINFO", name]))
            if info["index-state"] == "ready" && info["pending"] == "0" { break }
            Thread.sleep(forTimeInterval: 0.2)
        }
        print(String(format: "index ready %.1f s after the load", Double(DispatchTime.now().uptimeNanoseconds - buildStart) / 1e9))
        Thread.sleep(forTimeInterval: settle)
        print(index == "ivf" ? "nprobe  recall@10        QPS" : "    ef  recall@10        QPS")
        let sweep = index == "ivf" ? nprobes : efs
        // One untimed pass first: RocksDB compacts and the snapshot is written right after a load.
        for (i, value) in ([sweep.first ?? 10] + sweep).enumerated() {
            let option = index == "ivf" ? "NPROBE" : "EF"
            let results = ResultBox(count: queries.count)
            let start = DispatchTime.now().uptimeNanoseconds
            _ = RESPConnection.runPipelined(host: host, port: port, connections: connections, pipeline: pipeline,
                                            count: queries.count, request: { q in
                let blob = queries.withRow(q) { Array(UnsafeRawBufferPointer(start: $0, count: queries.dimension * 4)) }
                return [Array("VSIM".utf8), Array(name.utf8), Array("FP32".utf8), blob, Array("COUNT".utf8),
                        Array("10".utf8), Array(option.utf8), Array(String(value).utf8)]
            }, reply: { q, r in
                guard case .array(let items?) = r else { return }
                results.set(q, items.compactMap { if case .bulk(let b?) = $0 { return Int(String(decoding: b, as: UTF8.self)) } else { return nil } })
            })
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            var hits = 0
            for q in 0..<queries.count {
                let expected = Set(truth[q].prefix(10).map { Int($0) })
                hits += results.get(q).filter { expected.contains($0) }.count
            }
            if i == 0 { continue }
            print(String(format: "%6d  %9.4f  %9.0f", value, Double(hits) / Double(queries.count * 10), Double(queries.count) / seconds))
        }
    }

    /// Element ids are the row numbers, so replies compare directly with the ground truth.
    private func load(_ base: TexmexFile, into name: String) throws {
        let per = (base.count + connections - 1) / connections
        let failures = Counter()
        DispatchQueue.concurrentPerform(iterations: connections) { c in
            do {
                let conn = try RESPConnection(host: host, port: port)
                var row = c * per
                let end = min(base.count, row + per)
                while row < end {
                    let last = min(end, row + 256)
                    var out: [UInt8] = []
                    for r in row..<last {
                        let blob = base.withRow(r) { Array(UnsafeRawBufferPointer(start: $0, count: base.dimension * 4)) }
                        RESPConnection.encode([Array("VADD".utf8), Array(name.utf8), Array("FP32".utf8), blob, Array(String(r).utf8)], into: &out)
                    }
                    try conn.send(out)
                    for _ in row..<last { if case .integer = try conn.readReply() {} else { failures.add(1) } }
                    row = last
                }
            } catch {
                print("load connection failed: \(error)")
                failures.add(1)
            }
        }
        if failures.value > 0 { throw ValidationError("\(failures.value) VADDs failed") }
    }

    private func fields(_ reply: Reply) -> [String: String] {
        guard case .array(let items?) = reply else { return [:] }
        var out: [String: String] = [:]
        var i = 0
        while i + 1 < items.count {
            if case .bulk(let k?) = items[i], case .bulk(let v?) = items[i + 1] {
                out[String(decoding: k, as: UTF8.self)] = String(decoding: v, as: UTF8.self)
            }
            i += 2
        }
        return out
    }
}

/// Guarding: `rows` is guarded by `lock`.
final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var rows: [[Int]]
    init(count: Int) { rows = Array(repeating: [], count: count) }
    func set(_ i: Int, _ v: [Int]) { lock.lock(); rows[i] = v; lock.unlock() }
    func get(_ i: Int) -> [Int] { lock.lock(); defer { lock.unlock() }; return rows[i] }
}
