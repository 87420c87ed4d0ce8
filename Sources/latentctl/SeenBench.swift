import ArgumentParser
import Foundation
import LatentEngine
import LatentIndex
import LatentVectors

/// EXCLUDE-SEEN through the engine (no network): single-thread QPS and recall@10 for users who have seen
/// 5, 500 and 5,000 items of a synthetic item collection, with the seen lists as cached slot sets (what
/// VSIM ... EXCLUDE-SEEN uses) and, for comparison, as an id set mapped to slots per query (how an ad-hoc
/// EXCLUDE list is applied).
struct SeenBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "seen",
                                                    abstract: "EXCLUDE-SEEN QPS for users with 5, 500 and 5,000 seen items.")

    @Option(help: "Items in the collection.") var items = 100_000
    @Option(help: "Vector dimension.") var dim = 64
    @Option(help: "Users per seen-list size.") var users = 200
    @Option(parsing: .upToNextOption, help: "Seen-list sizes.") var sizes: [Int] = [5, 500, 5_000]
    @Option(help: "HNSW ef for the searches.") var ef = 64
    @Option(help: "Seed of the synthetic data.") var seed: UInt64 = 7
    @Option(help: "IP, L2 or COSINE.") var metric = "IP"
    @Option(help: "Fraction of each list taken from the user's own nearest items (the rest is random).") var near = 0.5

    func run() throws {
        var rng = SplitMix64(seed: seed)
        func gaussian() -> Float {
            // Box-Muller on two uniform draws in (0, 1].
            let u = Double(rng.next() >> 11 + 1) / Double(1 << 53), v = Double(rng.next() >> 11) / Double(1 << 53)
            return Float((-2 * log(u)).squareRoot() * cos(2 * .pi * v))
        }
        // Items around 100 centres, so neighbourhoods are dense as in real embeddings.
        let centres = (0..<100).map { _ in (0..<dim).map { _ in gaussian() } }
        let dir = NSTemporaryDirectory() + "latentdb-seenbench-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let catalog = try CollectionCatalog(directory: dir, fsync: .no)
        defer { catalog.close() }
        guard let m = Metric(rawValue: metric.uppercased()) else { throw ValidationError("--metric: IP, L2 or COSINE") }
        let c = try catalog.create(name: "items", dimension: dim, metric: m, index: IndexSpec(kind: .hnsw, m: 16, efConstruction: 200))
        let people = try catalog.create(name: "users", dimension: dim, metric: m, index: IndexSpec(kind: .flat))
        let start = Date()
        var batch: [Collection.Upsert] = []
        for i in 0..<items {
            let centre = centres[Int(rng.next() % 100)]
            batch.append(Collection.Upsert(id: ElementID("i\(i)"), vector: centre.map { $0 + 0.5 * gaussian() }))
            if batch.count == 1_024 || i == items - 1 {
                for r in try c.upsert(batch) { _ = try r.get() }
                batch.removeAll(keepingCapacity: true)
            }
        }
        while true {
            let info = c.info()
            if case .ready = info.state, info.pending == 0 { break }
            Thread.sleep(forTimeInterval: 0.2)
        }
        print(String(format: "%d items x %d (%@, HNSW M 16) loaded and indexed in %.1f s", items, dim, m.rawValue, Date().timeIntervalSince(start)))
        // Per size, users whose lists hold half their own nearest items (what a user rated tends to be
        // near them, so the walk meets those items) and half random ones.
        var groups: [(size: Int, users: [(id: ElementID, query: [Float])])] = []
        for size in sizes {
            var group: [(ElementID, [Float])] = []
            for u in 0..<users {
                let id = ElementID("u\(size)-\(u)")
                let query = centres[Int(rng.next() % 100)].map { $0 + 0.5 * gaussian() }
                try people.upsert(id: id, vector: query)
                let nearCount = Int(Double(size) * near)
                var seen = nearCount == 0 ? [] : Set(try c.search(query, SearchParameters(k: nearCount), exact: true).map(\.id))
                while seen.count < size { seen.insert(ElementID("i\(rng.next() % UInt64(items))")) }
                try people.setSeen(id: id, items: Array(seen))
                group.append((id, query))
            }
            groups.append((size, group))
        }
        print("size  mode                recall@10  QPS (one thread)")
        for (size, group) in groups {
            // Exact answers first (not timed).
            var truth: [[ElementID]] = []
            for (id, query) in group {
                truth.append(try c.search(query, SearchParameters(k: 10), exact: true, seen: people.seenSnapshot(of: id)).map(\.id))
            }
            for mode in ["slot set", "id set per query", "no exclusion"] {
                var found = 0
                // Warm-up pass (builds the cached slot sets, as the first query of a user does), then timed.
                for pass in 0..<2 {
                    found = 0
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    for (u, (id, query)) in group.enumerated() {
                        let params = SearchParameters(k: 10, ef: ef)
                        let hits: [SearchHit]
                        switch mode {
                        case "slot set": hits = try c.search(query, params, seen: people.seenSnapshot(of: id))
                        case "id set per query": hits = try c.search(query, params, excluding: Set(people.seen(of: id)))
                        default: hits = try c.search(query, params)
                        }
                        found += Set(hits.map(\.id)).intersection(truth[u]).count
                    }
                    let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                    if pass == 1 {
                        let label = mode.padding(toLength: 18, withPad: " ", startingAt: 0)
                        print(String(format: "%5d  %@  %.4f     %8.0f", size, label, Double(found) / Double(10 * group.count),
                                     Double(group.count) / seconds))
                    }
                }
            }
        }
    }
}
