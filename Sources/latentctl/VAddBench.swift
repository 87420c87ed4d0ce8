import ArgumentParser
import Foundation
import LatentVectors

/// Insert throughput through the server: pipelined `VADD key FP32 blob id` from several connections.
struct VAddBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "vadd", abstract: "VADD throughput with pipelined FP32 requests.")

    @Option var host = "127.0.0.1"
    @Option var port = 7379
    @Option(help: "Collection to fill (created with --metric when missing).")
    var collection = "bench"
    @Option var count = 100_000
    @Option var dim = 128
    @Option(help: "COSINE, L2 or IP.")
    var metric = "L2"
    @Option(help: "Requests in flight per connection.")
    var pipeline = 64
    @Option var connections = 4
    @Option(help: "Seed of the random vectors.")
    var seed: UInt64 = 1

    func run() throws {
        let admin = try RESPConnection(host: host, port: port)
        _ = try admin.call(["VCREATE", collection, "DIM", String(dim), "METRIC", metric])
        let perConnection = (count + connections - 1) / connections
        let failures = Counter()
        let start = DispatchTime.now().uptimeNanoseconds
        DispatchQueue.concurrentPerform(iterations: connections) { c in
            do {
                let conn = try RESPConnection(host: host, port: port)
                var rng = SplitMix64(seed: seed &+ UInt64(c) &* 0x9E37_79B9)
                let first = c * perConnection, last = min(count, first + perConnection)
                var next = first
                var blob = [UInt8](repeating: 0, count: dim * 4)
                while next < last {
                    let n = min(pipeline, last - next)
                    var out: [UInt8] = []
                    out.reserveCapacity(n * (dim * 4 + 64))
                    for i in next..<(next + n) {
                        blob.withUnsafeMutableBytes { raw in
                            for j in 0..<dim { raw.storeBytes(of: rng.nextFloat().bitPattern.littleEndian, toByteOffset: j * 4, as: UInt32.self) }
                        }
                        RESPConnection.encode([Array("VADD".utf8), Array(collection.utf8), Array("FP32".utf8), blob, Array("v\(i)".utf8)], into: &out)
                    }
                    try conn.send(out)
                    for _ in 0..<n {
                        if case .integer = try conn.readReply() {} else { failures.add(1) }
                    }
                    next += n
                }
            } catch {
                print("connection \(c): \(error)")
                failures.add(1)
            }
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let card = try admin.call(["VCARD", collection])
        print(String(format: "VADD %d x %d (%@), %d connections, pipeline %d: %.2f s, %.0f vectors/s, %d failed; VCARD %@",
                     count, dim, metric, connections, pipeline, seconds, Double(count) / seconds, failures.value, "\(card)"))
        if failures.value > 0 { throw ExitCode(1) }
    }
}

/// Guarding: `n` is guarded by `lock`.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func add(_ k: Int) { lock.lock(); n += k; lock.unlock() }
    /// Adds `k`; returns the value before.
    func fetchAdd(_ k: Int) -> Int { lock.lock(); defer { lock.unlock() }; let v = n; n += k; return v }
    var value: Int { lock.lock(); defer { lock.unlock() }; return n }
}

extension SplitMix64 {
    /// Uniform in [-1, 1).
    mutating func nextFloat() -> Float { Float(unit() * 2 - 1) }
}
