import ArgumentParser
import Foundation
import LatentEngine
import LatentFilter
import LatentIndex
import LatentVectors

/// Filtered search through the engine (planner included, no network) on a TEXMEX dataset, with the
/// synthetic attribute and filters of tools/filter_anchors.py, whose exact filtered ground truth it
/// reads: recall@10 and single-thread QPS per selectivity, per plan.
struct FilterBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "filter",
                                                    abstract: "FILTER recall and QPS at 50%, 10%, 1%, 0.1% selectivity.")

    @Option(help: "Directory with NAME_base.fvecs, NAME_query.fvecs and NAME_filter_<label>_gt.ivecs (tools/filter_anchors.py).")
    var data = "../bench-data"
    @Argument(help: "Dataset name, e.g. synth128 or mnist10k.")
    var dataset: String
    @Option(help: "hnsw or ivf.")
    var index = "hnsw"
    @Option(parsing: .upToNextOption) var efs: [Int] = [16, 32, 64, 128, 256]
    @Option(parsing: .upToNextOption) var nprobes: [Int] = [1, 2, 4, 8, 16, 32]
    @Option(parsing: .upToNextOption, help: "Plans to measure: auto (the planner), index (the filtered walk forced), scan (the exact scan of the matches forced).")
    var plans: [String] = ["auto", "index"]
    @Option(help: "Write the rows as JSON here.")
    var json: String?
    @Option(parsing: .upToNextOption, help: "Selectivities to measure (labels: 50% 10% 1% 0.1%).")
    var selectivities: [String] = ["50%", "10%", "1%", "0.1%"]
    @Option(help: "Passes over the queries per setting: the last one is reported, after background work the first queued (a filter's match index) has finished; profiling wants several.")
    var passes = 1

    static let filters: [(label: String, expression: String)] = [
        ("50%", ".sel < 500"), ("10%", ".sel < 100"), ("1%", ".sel < 10"), ("0.1%", ".sel == 7"),
    ]

    static func attribute(_ i: Int) -> UInt64 { (UInt64(i) &* 2_654_435_761) % 4_294_967_296 % 1000 }

    func run() throws {
        let base = try TexmexFile.readVectors("\(data)/\(dataset)_base.fvecs")
        let queries = try TexmexFile.readVectors("\(data)/\(dataset)_query.fvecs")
        let dir = NSTemporaryDirectory() + "latentdb-filterbench-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let catalog = try CollectionCatalog(directory: dir, fsync: .no)
        defer { catalog.close() }
        let spec = index == "ivf" ? IndexSpec(kind: .ivf) : IndexSpec(kind: .hnsw, m: 16, efConstruction: 200)
        let c = try catalog.create(name: "bench", dimension: base.dimension, metric: .l2, index: spec)
        let start = Date()
        for i in 0..<base.count {
            let v = Array(base.values[(i * base.dimension)..<((i + 1) * base.dimension)])
            try c.upsert(id: ElementID(String(i)), vector: v, attributes: Array("{\"sel\": \(Self.attribute(i))}".utf8))
        }
        while true {
            let info = c.info()
            if case .ready = info.state, info.pending == 0 { break }
            Thread.sleep(forTimeInterval: 0.2)
        }
        print(String(format: "%@: %d x %d loaded and indexed (%@) in %.1f s", dataset, base.count, base.dimension, index,
                     Date().timeIntervalSince(start)))
        var rows: [[String: Any]] = []
        for (label, expression) in Self.filters where selectivities.contains(label) {
            let truth = try TexmexFile.readNeighbors("\(data)/\(dataset)_filter_\(label)_gt.ivecs")
            let filter = try FilterExpression(expression)
            for plan in plans {
                for value in index == "ivf" ? nprobes : efs {
                    let params = index == "ivf" ? SearchParameters(k: 10, nprobe: value) : SearchParameters(k: 10, ef: value)
                    let forcing: SearchPlan? = plan == "index" ? .index : plan == "scan" ? .filteredScan : nil
                    var results: [[Int]] = []
                    var plansUsed: [String: Int] = [:]
                    var t0 = DispatchTime.now().uptimeNanoseconds
                    var firstPass = ""
                    for pass in 0..<max(1, passes) {
                        if pass > 0 {
                            // What the first pass queued in the background (a filter's match index) is
                            // finished before the pass that is reported: that pass measures the warm state.
                            let passQPS = Double(queries.count) / (Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
                            let passPlans = plansUsed.map { "\($0.key) \($0.value)" }.sorted().joined(separator: ", ")
                            if pass == 1 { firstPass = String(format: "first pass QPS %.0f (%@)", passQPS, passPlans) }
                            catalog.indexer.waitUntilIdle()
                        }
                        results.removeAll(keepingCapacity: true)
                        plansUsed.removeAll()
                        t0 = DispatchTime.now().uptimeNanoseconds
                        for q in 0..<queries.count {
                            let query = Array(queries.values[(q * queries.dimension)..<((q + 1) * queries.dimension)])
                            let (hits, used) = try c.searchPlanned(query, params, filter: filter, forcing: forcing)
                            results.append(hits.map { Int(String(decoding: $0.id.bytes, as: UTF8.self)) ?? -1 })
                            plansUsed[used.rawValue, default: 0] += 1
                        }
                    }
                    let qps = Double(queries.count) / (Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
                    // Found / findable: where fewer than 10 rows pass, the ground truth is padded with -1.
                    var found = 0, possible = 0
                    for (r, t) in zip(results, truth) {
                        let valid = Set(t.prefix(10).filter { $0 >= 0 }.map { Int($0) })
                        found += Set(r).intersection(valid).count
                        possible += valid.count
                    }
                    let recall = Double(found) / Double(max(1, possible))
                    let used = plansUsed.map { "\($0.key) \($0.value)" }.sorted().joined(separator: ", ")
                    print(String(format: "%5@  %-5@ %@ %4d  recall@10 %.4f  QPS %8.0f  (%@)  %@", label, plan,
                                 index == "ivf" ? "nprobe" : "ef", value, recall, qps, used, firstPass))
                    rows.append(["selectivity": label, "plan": plan, index == "ivf" ? "nprobe" : "ef": value, "recall": recall,
                                 "qps": qps, "plans_used": plansUsed, "index": index, "first_pass": firstPass])
                    if plan == "scan" || (plan == "auto" && plansUsed["index"] == nil && plansUsed["matchIndex"] == nil) { break }  // the planner scanned: no knob applies
                }
            }
        }
        if let json {
            try JSONSerialization.data(withJSONObject: rows, options: [.prettyPrinted, .sortedKeys]).write(to: URL(fileURLWithPath: json))
        }
    }
}
