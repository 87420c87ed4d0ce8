import ArgumentParser
import Foundation
import LatentIndex
import LatentVectors

/// ns per vector of the distance kernels, scanning a buffer the way an exact search does, beside a plain
/// Swift loop (what the compiler makes of scalar code) so the gain of SIMD is measured, not assumed.
struct KernelBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "kernels", abstract: "Distance kernels: ns per vector.")

    @Option(help: "Dimensions to measure.")
    var dims: [Int] = [10, 128, 384, 784]

    @Option(help: "Kernel levels to measure, comma-separated (portable, avx2, avx512; default: every level this CPU runs).")
    var levels: String?

    @Flag(help: "Run the requested levels even where cpuid says the CPU lacks them (tests use it under an emulator to show the AVX2 code really faults there); expect SIGILL.")
    var uncheckedLevel = false

    @Option(help: "Bytes of vectors scanned per pass (default 32 MiB: beyond the L2 cache, like a real collection).")
    var bytes = 32 << 20

    @Option(help: "Seconds to measure each case.")
    var seconds = 1.0

    func run() throws {
        var chosen = KernelLevel.runnable
        if let levels {
            chosen = try levels.split(separator: ",").map { name in
                guard let level = KernelLevel.allCases.first(where: { $0.name == name.lowercased() }) else {
                    throw ValidationError("--levels: \(name) is not a kernel level: use portable, avx2 or avx512")
                }
                guard uncheckedLevel || level <= KernelLevel.supported else {
                    throw ValidationError("--levels: this CPU lacks \(level.name) (best: \(KernelLevel.supported.name))")
                }
                return level
            }
        }
        print("CPU: best kernel level \(KernelLevel.supported.name); active in this process: \(DistanceKernels.active.level.name)")
        print("dim  metric   level     simd ns/vec  scalar ns/vec  speedup  simd GFLOP/s   flat top-10 ns/vec")
        for dim in dims {
            let n = max(1000, bytes / (dim * 4))
            let buffer = VectorBuffer(dimension: dim, initialCapacity: n)
            var rng = SystemRandomNumberGenerator()
            var v = [Float](repeating: 0, count: dim)
            for slot in 0..<n {
                for i in 0..<dim { v[i] = Float.random(in: -1...1, using: &rng) }
                buffer.set(slot: slot, v)
            }
            let q = (0..<dim).map { _ in Float.random(in: -1...1, using: &rng) }
            for metric in Metric.allCases {
                let scalar = measure(n) { q.withUnsafeBufferPointer { scanScalar(metric, $0.baseAddress!, buffer, n) } }
                for level in chosen {
                    let kernels = KernelTable(level)
                    let simd = measure(n) { q.withUnsafeBufferPointer { scanSIMD(kernels, metric, $0.baseAddress!, buffer, n) } }
                    // FlatIndex runs the process's active level only.
                    let flat = level != DistanceKernels.active.level ? "-" : String(format: "%.2f", measure(n) {
                        q.withUnsafeBufferPointer {
                            Float(FlatIndex.scan($0.baseAddress!, in: buffer, metric: metric, k: 10, ranksBefore: { $0 < $1 }).count)
                        }
                    })
                    let flops = Double(dim * (metric == .l2 ? 3 : 2)) / simd
                    func padded(_ s: String, _ width: Int) -> String { s + String(repeating: " ", count: max(0, width - s.count)) }
                    print(String(format: "%4d  ", dim) + padded(metric.rawValue, 7) + "  " + padded(level.name, 8)
                          + String(format: " %11.2f  %13.2f  %6.1fx  %12.1f  ", simd, scalar, scalar / simd, flops)
                          + String(repeating: " ", count: max(0, 18 - flat.count)) + flat)
                }
            }
        }
    }

    /// Runs `body` (one pass over n vectors) repeatedly for `seconds`; returns ns per vector.
    private func measure(_ n: Int, _ body: () -> Float) -> Double {
        var sink: Float = 0
        sink += body() // warm up
        var passes = 0
        let start = DispatchTime.now().uptimeNanoseconds
        var now = start
        while Double(now - start) < seconds * 1e9 {
            sink += body()
            passes += 1
            now = DispatchTime.now().uptimeNanoseconds
        }
        if sink == .greatestFiniteMagnitude { print(sink) } // keeps the work observable
        return Double(now - start) / Double(passes * n)
    }

    private func scanSIMD(_ kernels: KernelTable, _ metric: Metric, _ q: UnsafePointer<Float>, _ buffer: VectorBuffer,
                          _ n: Int) -> Float {
        var acc: Float = 0
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 256) { out in
            var start = 0
            while start < n {
                let count = min(256, n - start)
                kernels.distances(metric, query: q, base: buffer.vector(start), count: count, dimension: buffer.dimension,
                                          invNorms: buffer.inverseNorms(from: start), out: out.baseAddress!)
                acc += out[0]
                start += count
            }
        }
        return acc
    }

    /// The textbook loop, compiled without any kernel module's flags (norms precomputed as in the SIMD path).
    private func scanScalar(_ metric: Metric, _ q: UnsafePointer<Float>, _ buffer: VectorBuffer, _ n: Int) -> Float {
        var acc: Float = 0
        let dim = buffer.dimension
        let qInv = DistanceKernels.inverseNorm(q, dim)
        for slot in 0..<n {
            let v = buffer.vector(slot)
            var s: Float = 0
            switch metric {
            case .l2:
                for i in 0..<dim { let d = q[i] - v[i]; s += d * d }
                acc += s
            case .ip:
                for i in 0..<dim { s += q[i] * v[i] }
                acc -= s
            case .cosine:
                for i in 0..<dim { s += q[i] * v[i] }
                acc += 1 - s * qInv * buffer.inverseNorm(slot)
            }
        }
        return acc
    }
}
