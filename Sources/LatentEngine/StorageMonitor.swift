import Dispatch
import Foundation
import LatentStorage
import Logging

/// What INFO reports of the store's ability to take writes.
public struct StorageStatus: Sendable, Equatable {
    /// Whether writes are accepted now.
    public var writesOK: Bool
    /// RocksDB's error while writes are stopped (a full disk, a failed WAL append), else the last one.
    public var lastError: String?
    /// Times writes were stopped by a background error, and resumed without a restart.
    public var stops: Int
    public var resumes: Int
    /// Opened read-only (the disk was full at startup): writes are refused until a restart.
    public var readOnly: Bool
}

/// The once-a-second storage chores: the WAL sync of `--fsync everysec`, and recovery from storage
/// errors. When RocksDB stops writes (ENOSPC or another I/O error in a WAL append, a flush or a
/// compaction) every write answers with that error while reads keep working; each second the monitor
/// asks RocksDB to resume (DB::Resume), which succeeds once space is free again: writes then work
/// without a restart. Stops and resumes are logged and counted.
///
/// Guarding: `current` and `failedResumes` are guarded by `lock`; `timer` is set in `start` and cleared in
/// `stop` (the catalog's init and close); `db`, `syncEverySecond` and `logger` are immutable.
final class StorageMonitor: @unchecked Sendable {
    private let db: RocksDB
    private let syncEverySecond: Bool
    private let logger: Logger
    private let lock = NSLock()
    private var current: StorageStatus
    private var timer: DispatchSourceTimer?
    private var failedResumes = 0

    init(db: RocksDB, syncEverySecond: Bool, readOnly: Bool, logger: Logger) {
        self.db = db
        self.syncEverySecond = syncEverySecond
        self.logger = logger
        current = StorageStatus(writesOK: !readOnly, lastError: db.readOnlyReason, stops: 0, resumes: 0, readOnly: readOnly)
    }

    /// The status now: whether writes work is asked of RocksDB, not taken from the last round (RocksDB's
    /// own recovery may have resumed writes in between).
    var status: StorageStatus {
        refresh()
        return lock.withLock { current }
    }

    private func refresh() {
        guard !lock.withLock({ current.readOnly }) else { return }
        let error: String?
        do { error = try db.backgroundError() } catch { return } // closed
        if let error {
            noteStopped(error)
        } else if lock.withLock({ !current.writesOK }) {
            markResumed()
        }
    }

    func start(interval: DispatchTimeInterval = .seconds(1)) {
        guard !current.readOnly else { return }
        let t = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "latentdb.storage-monitor", qos: .utility))
        t.schedule(deadline: .now() + interval, repeating: interval)
        // A strong capture, released by `stop` (the catalog always stops its monitor): a weak one left a
        // side table that LeakSanitizer reports at the fuzzer's exit.
        t.setEventHandler { [self] in tick() }
        t.resume()
        timer = t
    }

    func stop() {
        timer?.setEventHandler {}
        timer?.cancel()
        timer = nil
    }

    /// One round: sync the WAL (everysec), then check for a stopped store and try to resume it.
    func tick() {
        if syncEverySecond {
            do {
                try db.syncWAL()
            } catch {
                // Logged once per stop; while stopped, every round would fail the same way.
                if lock.withLock({ current.writesOK }) { logger.error("WAL sync failed: \(error)") }
            }
        }
        refresh()
        // Only RocksDB's own stop needs DB::Resume; the free-space guard lifts by itself.
        guard lock.withLock({ !current.writesOK && !current.readOnly }), (try? db.engineError()) ?? nil != nil else { return }
        do {
            try db.resume()
            markResumed()
        } catch {
            // Still failing (the disk is still full): the next round retries; logged every 30th round.
            let n: Int = lock.withLock {
                failedResumes += 1
                return failedResumes
            }
            // "Busy": RocksDB's own recovery is running (it waits for a write buffer's worth of free space).
            if n % 30 == 1 { logger.warning("storage not resumed yet (attempt \(n)): \(error)") }
        }
    }

    private func noteStopped(_ error: String) {
        let first: Bool = lock.withLock {
            defer {
                current.writesOK = false
                current.lastError = error
            }
            if current.writesOK { current.stops += 1 }
            return current.writesOK
        }
        if first {
            logger.error("storage stopped taking writes: \(error); reads continue, writes answer with this error, resuming by itself once the cause (free disk space) is fixed")
        }
    }

    private func markResumed() {
        let changed: Bool = lock.withLock {
            defer { current.writesOK = true }
            if !current.writesOK { current.resumes += 1 }
            return !current.writesOK
        }
        if changed { logger.notice("storage resumed: writes are accepted again") }
    }
}
