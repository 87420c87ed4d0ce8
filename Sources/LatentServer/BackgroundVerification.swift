import Atomics
import Foundation
import LatentEngine
import Logging
import NIOConcurrencyHelpers

/// VERIFY: StoreVerifier over a checkpoint of the running store, on a background queue, one at a time;
/// INFO persistence reports its state and the last result (`verify_*`). The checkpoint lives in
/// `<data-dir>/.latentdb-verify` while it runs (hard links: it costs the memtable flush and inodes, not
/// a copy of the data).
/// Guarding: `state` is a NIOLockedValueBox; `cancelled` is atomic; `queue`, `group` and `logger` are
/// immutable (the group is entered and left once per run).
public final class BackgroundVerification: @unchecked Sendable {
    public struct State: Sendable {
        public var running = false
        /// "none" before the first run, then "ok", "problems", "failed" (the verification itself could not
        /// run) or "cancelled" (a shutdown stopped it).
        public var lastStatus = "none"
        public var lastProblems: [String] = []
        public var lastFinished: Date?
        public var lastSeconds = 0.0
        public var lastElements = 0
    }

    private let state = NIOLockedValueBox(State())
    private let queue = DispatchQueue(label: "latentdb.verify", qos: .utility)
    private let logger = Logger(label: "latentd.verify")
    private let group = DispatchGroup()
    private let cancelled = ManagedAtomic<Bool>(false)

    /// Stops a running verification at its next check and waits for it: called before the store closes,
    /// so no verification thread is inside RocksDB when the process exits.
    public func cancelAndWait() {
        cancelled.store(true, ordering: .relaxed)
        group.wait()
    }

    public var current: State { state.withLockedValue { $0 } }

    /// Starts a verification; false when one is already running.
    func start(catalog: CollectionCatalog) -> Bool {
        let started = state.withLockedValue { s -> Bool in
            guard !s.running else { return false }
            s.running = true
            return true
        }
        guard started else { return false }
        logger.info("verification started")
        group.enter()
        queue.async { [state, logger, group, cancelled] in
            defer { group.leave() }
            let began = DispatchTime.now().uptimeNanoseconds
            var status = "ok", problems: [String] = [], elements = 0
            do {
                let scratch = (catalog.store.directory as NSString).appendingPathComponent(".latentdb-verify")
                let report = try StoreVerifier.verifyLive(catalog, scratch: scratch,
                                                          isCancelled: { cancelled.load(ordering: .relaxed) })
                problems = report.problems
                elements = report.elements
                status = report.isClean ? "ok" : "problems"
            } catch is StoreVerifier.Cancelled {
                status = "cancelled"
            } catch {
                status = "failed"
                problems = ["verification could not run: \(error)"]
            }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - began) / 1e9
            state.withLockedValue {
                $0 = State(running: false, lastStatus: status, lastProblems: problems, lastFinished: Date(), lastSeconds: seconds,
                           lastElements: elements)
            }
            if status == "cancelled" {
                logger.info("verification cancelled by shutdown")
            } else if problems.isEmpty {
                logger.info("verification finished: no problems", metadata: ["elements": "\(elements)", "seconds": "\(seconds)"])
            } else {
                for p in problems { logger.error("verification: \(p)") }
            }
        }
        return true
    }

    /// INFO persistence's verify_* fields.
    var infoFields: [(String, String)] {
        let s = current
        let first = (s.lastProblems.first ?? "").replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " ")
        return [("verify_in_progress", s.running ? "1" : "0"), ("verify_last_status", s.lastStatus),
                ("verify_last_problems", String(s.lastProblems.count)), ("verify_last_elements", String(s.lastElements)),
                ("verify_last_time", String(Int(s.lastFinished?.timeIntervalSince1970 ?? 0))),
                ("verify_last_duration_sec", String(format: "%.3f", s.lastSeconds)), ("verify_last_problem", first)]
    }
}
