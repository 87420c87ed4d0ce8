import ArgumentParser
import Foundation
import LatentVectors

/// "Top items for this user" through the server, with users drawn from a Zipf law (a few users are asked
/// for very often, as on a real site), so the result cache's effect shows.
struct RecommendationBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rec", abstract: "VSIM items ELE u FROM users QPS with Zipf-distributed users.")

    @Option var host = "127.0.0.1"
    @Option var port = 7379
    @Option(help: "The user ids, one per line (a `latentctl train` users.ids).") var userIds: String
    @Option var usersCollection = "users"
    @Option var itemsCollection = "items"
    @Option(help: "Zipf exponent of user popularity.") var zipf = 1.1
    @Option var requests = 100_000
    @Option var connections = 2
    @Option var pipeline = 16
    @Flag var excludeSeen = false
    @Option var seed: UInt64 = 7

    func run() throws {
        guard let text = try? String(contentsOfFile: userIds, encoding: .utf8) else { throw Failure("cannot read \(userIds)") }
        let users = text.split(whereSeparator: \.isNewline).map(String.init)
        guard !users.isEmpty else { throw Failure("no users in \(userIds)") }
        // Cumulative Zipf weights over ranks 1...n, users assigned to ranks in a seeded shuffle.
        var rng = SplitMix64(seed: seed)
        var ranked = users
        for i in stride(from: ranked.count - 1, to: 0, by: -1) { ranked.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        var cumulative: [Double] = []
        var total = 0.0
        for r in 1...ranked.count {
            total += 1 / pow(Double(r), zipf)
            cumulative.append(total)
        }
        let picks: [String] = (0..<requests).map { _ in
            let x = rng.unit() * total
            var lo = 0, hi = cumulative.count - 1
            while lo < hi {
                let mid = (lo + hi) / 2
                if cumulative[mid] < x { lo = mid + 1 } else { hi = mid }
            }
            return ranked[lo]
        }
        let failures = Counter()
        let start = DispatchTime.now().uptimeNanoseconds
        failures.add(RESPConnection.runPipelined(host: host, port: port, connections: connections, pipeline: pipeline,
                                                 count: picks.count, request: { q in
            var args = ["VSIM", itemsCollection, "ELE", picks[q], "FROM", usersCollection, "COUNT", "10"]
            if excludeSeen { args.append("EXCLUDE-SEEN") }
            return args.map { Array($0.utf8) }
        }, reply: { _, r in
            if case .array = r {} else { failures.add(1) }
        }))
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        var cacheLine = ""
        if case .bulk(let info?) = try RESPConnection(host: host, port: port).call(["INFO", "stats"]) {
            cacheLine = String(decoding: info, as: UTF8.self).split(whereSeparator: \.isNewline)
                .filter { $0.hasPrefix("query_cache_hits") || $0.hasPrefix("query_cache_misses") || $0.hasPrefix("query_cache_enabled") }
                .joined(separator: " ")
        }
        print(String(format: "%d requests, %d users, zipf %.2f: %.2f s, %.0f requests/s, %d failed; %@", requests, users.count, zipf,
                     seconds, Double(requests) / seconds, failures.value, cacheLine))
    }
}
