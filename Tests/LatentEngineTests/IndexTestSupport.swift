import Foundation
@testable import LatentEngine
import XCTest

/// A deterministic test vector: element i's components, spread so that neighbours are well defined.
func engineTestVector(_ i: Int, dim: Int) -> [Float] {
    (0..<dim).map { d in Float(sin(Double(i * 31 + d * 7))) + Float(i % 17) * 0.1 }
}

/// Waits until the collection's index is ready with nothing pending (fails the test after `timeout`).
/// The timeout is generous: under ThreadSanitizer (make tsan) on a busy 2-core machine a drain of a few
/// hundred HNSW inserts took over a minute.
func waitForIndexReady(_ c: LatentEngine.Collection, timeout: TimeInterval = 240, file: StaticString = #filePath, line: UInt = #line) {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        let info = c.info().testFields
        if info["index-state"] == "ready" && info["pending"] == "0" { return }
        Thread.sleep(forTimeInterval: 0.05)
    }
    XCTFail("index did not become ready: \(c.info())", file: file, line: line)
}
