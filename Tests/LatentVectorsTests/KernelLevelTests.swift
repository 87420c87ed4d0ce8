import Foundation
import LatentVectors
import XCTest

/// Every kernel level this CPU runs, against float64 references: the test that keeps the portable
/// fallback (what a CPU without AVX2, or arm64, runs) and the AVX paths honest.
final class KernelLevelTests: XCTestCase {
    private let dims = Array(1...40) + [63, 64, 65, 127, 128, 129, 384, 784]

    private func tolerance(_ n: Int, _ magnitude: Double) -> Double { 2e-6 * Double(n).squareRoot() * max(magnitude, 1) + 1e-6 }

    private func checkPairAndBatchKernels(_ k: KernelTable) {
        var rng = SeededRandom(seed: 7)
        for n in dims {
            let count = 5
            let q = rng.vector(n)
            let base = (0..<count).flatMap { _ in rng.vector(n) }
            let invNorms = (0..<count).map { i in
                Float(1 / base[i * n ..< (i + 1) * n].reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot())
            }
            var out = [Float](repeating: .nan, count: count)
            let qNorm = q.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            for i in 0..<count {
                let v = Array(base[i * n ..< (i + 1) * n])
                let dot = zip(q, v).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                let l2 = zip(q, v).reduce(0.0) { $0 + (Double($1.0) - Double($1.1)) * (Double($1.0) - Double($1.1)) }
                XCTAssertEqual(Double(k.dot(q, v, n)), dot, accuracy: tolerance(n, 1), "\(k.level) dot n=\(n)")
                XCTAssertEqual(Double(k.l2Squared(q, v, n)), l2, accuracy: tolerance(n, l2), "\(k.level) l2 n=\(n)")
                XCTAssertEqual(Double(k.inverseNorm(v, n)), Double(invNorms[i]), accuracy: 1e-5 * Double(invNorms[i]),
                               "\(k.level) inverse norm n=\(n)")
            }
            for metric in Metric.allCases {
                k.distances(metric, query: q, base: base, count: count, dimension: n, invNorms: invNorms, out: &out)
                for i in 0..<count {
                    let v = Array(base[i * n ..< (i + 1) * n])
                    let dot = zip(q, v).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                    let expected: Double
                    switch metric {
                    case .l2: expected = zip(q, v).reduce(0.0) { $0 + (Double($1.0) - Double($1.1)) * (Double($1.0) - Double($1.1)) }
                    case .ip: expected = -dot
                    case .cosine: expected = 1 - min(max(dot / (qNorm * Double(1 / invNorms[i])), -1), 1)
                    }
                    XCTAssertEqual(Double(out[i]), expected, accuracy: tolerance(n, abs(expected)), "\(k.level) \(metric) n=\(n) i=\(i)")
                }
            }
        }
        XCTAssertEqual(k.inverseNorm([0, 0, 0], 3), 0)
    }

    /// The factorisation steps against the formulas in Double.
    private func checkFactorSteps(_ k: KernelTable) {
        var rng = SeededRandom(seed: 8)
        for n in [1, 7, 8, 9, 10, 16, 17, 32, 64, 100] {
            let p0 = rng.vector(n), q0 = rng.vector(n), j0 = rng.vector(n)
            let lr: Float = 0.05, reg: Float = 0.02
            // SGD on one rating.
            var p = p0, q = q0
            let e = k.sgdRating(&p, &q, n, 4.5, 0.25, lr, reg)
            let dot = zip(p0, q0).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            let ed = 4.5 - (0.25 + dot)
            XCTAssertEqual(Double(e), ed, accuracy: 1e-5 * Double(n), "\(k.level) sgd error n=\(n)")
            for i in 0..<n {
                let pe = Double(p0[i]) + Double(lr) * (ed * Double(q0[i]) - Double(reg) * Double(p0[i]))
                let qe = Double(q0[i]) + Double(lr) * (ed * Double(p0[i]) - Double(reg) * Double(q0[i]))
                XCTAssertEqual(Double(p[i]), pe, accuracy: 1e-5 * Double(n), "\(k.level) sgd p n=\(n)")
                XCTAssertEqual(Double(q[i]), qe, accuracy: 1e-5 * Double(n), "\(k.level) sgd q n=\(n)")
            }
            // axpy.
            var y = q0
            k.axpy(-1.5, p0, &y, n)
            for i in 0..<n { XCTAssertEqual(Double(y[i]), Double(q0[i]) - 1.5 * Double(p0[i]), accuracy: 1e-6, "\(k.level) axpy") }
            // BPR update with a given z.
            var bp = p0, bi = q0, bj = j0
            k.bprUpdate(&bp, &bi, &bj, n, 0.3, lr, reg)
            for i in 0..<n {
                let (pf, fi, fj) = (Double(p0[i]), Double(q0[i]), Double(j0[i]))
                XCTAssertEqual(Double(bp[i]), pf + 0.05 * (0.3 * (fi - fj) - 0.02 * pf), accuracy: 1e-6, "\(k.level) bpr p")
                XCTAssertEqual(Double(bi[i]), fi + 0.05 * (0.3 * pf - 0.02 * fi), accuracy: 1e-6, "\(k.level) bpr qi")
                XCTAssertEqual(Double(bj[i]), fj + 0.05 * (-0.3 * pf - 0.02 * fj), accuracy: 1e-6, "\(k.level) bpr qj")
            }
        }
    }

    func testEveryRunnableLevelMatchesFloat64References() {
        XCTAssertTrue(KernelLevel.runnable.contains(.portable))
        for level in KernelLevel.runnable {
            let k = KernelTable(level)
            XCTAssertEqual(k.level, level)
            checkPairAndBatchKernels(k)
            checkFactorSteps(k)
        }
    }

    /// Separate so a run on a CPU without AVX-512 (this project's CI machines) reports the path as
    /// skipped, not as passed.
    func testAVX512Kernels() throws {
        guard KernelLevel.supported >= .avx512 else {
            throw XCTSkip("this CPU lacks AVX-512 (best level: \(KernelLevel.supported.name)); the avx512 kernels are built but cannot run here")
        }
        checkPairAndBatchKernels(KernelTable(.avx512))
        checkFactorSteps(KernelTable(.avx512))
    }

    func testLevelSelectionHonoursThePinAndRefusesWhatTheCPULacks() throws {
        XCTAssertEqual(try KernelLevel.select(requested: nil, supported: .avx2), .avx2)
        XCTAssertEqual(try KernelLevel.select(requested: "", supported: .avx512), .avx512)
        XCTAssertEqual(try KernelLevel.select(requested: "portable", supported: .avx2), .portable)
        XCTAssertEqual(try KernelLevel.select(requested: "AVX2", supported: .avx512), .avx2)
        XCTAssertThrowsError(try KernelLevel.select(requested: "avx512", supported: .avx2)) {
            XCTAssertEqual($0 as? KernelLevel.SelectionError, .unsupported(.avx512, best: .avx2))
            XCTAssertTrue("\($0)".contains("its best level is avx2"), "\($0)")
        }
        XCTAssertThrowsError(try KernelLevel.select(requested: "avx2", supported: .portable))
        XCTAssertThrowsError(try KernelLevel.select(requested: "sse9", supported: .avx2)) {
            XCTAssertTrue("\($0)".contains("use portable, avx2 or avx512"), "\($0)")
        }
        // The process's own choice follows the environment the tests run under (make test runs this
        // target a second time with LATENT_KERNELS=portable).
        let pinned = ProcessInfo.processInfo.environment[KernelLevel.environmentVariable]
        XCTAssertEqual(DistanceKernels.active.level, try KernelLevel.select(requested: pinned))
    }
}
