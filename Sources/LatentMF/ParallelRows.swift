import Dispatch
import Foundation

/// Runs work over rows on `threads` threads (0: one per core). Rows are handed out in chunks from a
/// shared counter, so threads that drew cheap rows (users with few interactions) take more.
enum ParallelRows {
    static func threadCount(_ requested: Int) -> Int {
        requested > 0 ? requested : ProcessInfo.processInfo.activeProcessorCount
    }

    /// Calls `body(thread, rows)` for consecutive chunks of `0..<count`; `thread` is in 0..<threads, so a
    /// caller can keep per-thread scratch space.
    static func run(count: Int, threads requested: Int, chunk: Int = 16, _ body: (Int, Range<Int>) -> Void) {
        let threads = min(threadCount(requested), max(1, count))
        if threads == 1 {
            body(0, 0..<count)
            return
        }
        let cursor = Cursor()
        DispatchQueue.concurrentPerform(iterations: threads) { thread in
            while true {
                let start = cursor.take(chunk)
                if start >= count { return }
                body(thread, start..<min(start + chunk, count))
            }
        }
    }

    /// The next unclaimed row. `next` is guarded by `lock`.
    private final class Cursor: @unchecked Sendable {
        private let lock = NSLock()
        private var next = 0

        func take(_ n: Int) -> Int {
            lock.lock()
            defer { lock.unlock() }
            let start = next
            next += n
            return start
        }
    }
}
