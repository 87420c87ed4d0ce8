import Foundation
import NIOConcurrencyHelpers
import NIOCore

/// A leader's side of replication: its replication id, the stream offset, the backlog, the replicas
/// connected to it with the offsets they acknowledged, and the clients waiting for acknowledgements
/// (WAIT, --min-replicas-to-write).
///
/// Threading: the executor appends inside the catalog's write order (`CollectionCatalog.ordered`), so
/// the stream's order is the order writes reached the store; each replica's feed reads the backlog on
/// its connection's event loop. Guarding: every field is guarded by `condition` (its lock), which blocked
/// waiters also wait on; the feeds' wake-up closures are called outside it.
public final class ReplicationLeader: @unchecked Sendable {
    /// What the leader knows of one connected replica.
    public struct Replica: Sendable {
        public let connection: Int
        public let address: String
        public var listeningPort: Int
        /// "wait_bgsave" while its copy is prepared, "send_bulk" while files go, "online" while streaming.
        public var state: String
        public var ackOffset: Int64
        /// Uptime nanoseconds of the last acknowledgement (or of the connection).
        public var lastAck: UInt64
    }

    private struct AsyncWaiter {
        let id: Int
        let replicas: Int
        let offset: Int64
        let promise: EventLoopPromise<Int>
    }

    private let condition = NSCondition()
    private var replicationIdValue: String
    private var backlog: ReplicationBacklog
    private var replicas: [Int: Replica] = [:]
    private var wakeups: [Int: @Sendable () -> Void] = [:]
    private var waiters: [AsyncWaiter] = []
    private var nextWaiter = 0

    init(backlogBytes: Int) {
        replicationIdValue = Self.newReplicationId()
        backlog = ReplicationBacklog(startingAt: 0, capacity: backlogBytes)
    }

    /// 40 random hex digits, as Redis' replication ids.
    static func newReplicationId() -> String {
        var g = SystemRandomNumberGenerator()
        return (0..<40).map { _ in String(UInt8.random(in: 0..<16, using: &g), radix: 16) }.joined()
    }

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        condition.lock()
        defer { condition.unlock() }
        return try body()
    }

    public var replicationId: String { locked { replicationIdValue } }
    /// The offset the next write gets: every write before it is in the stream.
    public var offset: Int64 { locked { backlog.endOffset } }
    public var backlogInfo: (size: Int, firstByte: Int64, held: Int) {
        locked { (backlog.capacity, backlog.startOffset, Int(backlog.endOffset - backlog.startOffset)) }
    }
    public var connectedReplicas: [Replica] { locked { replicas.values.sorted { $0.connection < $1.connection } } }

    func setBacklogCapacity(_ bytes: Int) { locked { backlog.capacity = bytes } }

    /// Appends write commands (each a request's arguments) as one piece of the stream; returns the offset
    /// after them. Call inside `CollectionCatalog.ordered`.
    @discardableResult
    func append(_ commands: [[ByteBuffer]]) -> Int64 {
        var bytes = ByteBuffer()
        for c in commands { ReplicationEncoding.encode(c, into: &bytes) }
        let (end, wake): (Int64, [@Sendable () -> Void]) = locked {
            backlog.append(bytes)
            return (backlog.endOffset, Array(wakeups.values))
        }
        for w in wake { w() }
        return end
    }

    /// The stream from `offset` (about `maxBytes`); nil when the backlog no longer holds it.
    func read(from offset: Int64, maxBytes: Int) -> [ByteBuffer]? { locked { backlog.read(from: offset, maxBytes: maxBytes) } }

    /// Whether PSYNC `id` `offset` can continue from the backlog.
    func canContinue(replicationId id: String, offset: Int64) -> Bool {
        locked { id == replicationIdValue && backlog.holds(offset) }
    }

    /// A new history (a promoted replica): a new id, the stream continuing at `offset`, an empty backlog.
    func restart(at offset: Int64) {
        locked {
            replicationIdValue = Self.newReplicationId()
            backlog.reset(at: offset)
        }
    }

    // MARK: Replicas

    func register(_ replica: Replica, wake: @escaping @Sendable () -> Void) {
        locked {
            replicas[replica.connection] = replica
            wakeups[replica.connection] = wake
        }
    }

    func update(connection: Int, _ change: (inout Replica) -> Void) {
        locked {
            guard var r = replicas[connection] else { return }
            change(&r)
            replicas[connection] = r
        }
    }

    func unregister(connection: Int) {
        locked {
            replicas[connection] = nil
            wakeups[connection] = nil
        }
    }

    /// A replica acknowledged everything before `offset`.
    func acknowledge(connection: Int, offset: Int64) {
        let done: [(EventLoopPromise<Int>, Int)] = locked {
            guard var r = replicas[connection] else { return [] }
            r.ackOffset = max(r.ackOffset, offset)
            r.lastAck = DispatchTime.now().uptimeNanoseconds
            replicas[connection] = r
            condition.broadcast()
            var done: [(EventLoopPromise<Int>, Int)] = []
            waiters.removeAll { w in
                let n = countAcked(w.offset)
                guard n >= w.replicas else { return false }
                done.append((w.promise, n))
                return true
            }
            return done
        }
        for (p, n) in done { p.succeed(n) }
    }

    /// Replicas that acknowledged `offset` (the caller holds the lock).
    private func countAcked(_ offset: Int64) -> Int {
        replicas.values.filter { $0.state == "online" && $0.ackOffset >= offset }.count
    }

    public func acknowledged(_ offset: Int64) -> Int { locked { countAcked(offset) } }

    /// Replicas streaming whose last acknowledgement is at most `maxLag` seconds old (min-replicas-max-lag).
    public func goodReplicas(maxLagSeconds: Int) -> Int {
        let now = DispatchTime.now().uptimeNanoseconds
        return locked {
            replicas.values.filter { $0.state == "online" && now &- $0.lastAck <= UInt64(maxLagSeconds) * 1_000_000_000 }.count
        }
    }

    /// Blocks until `replicas` replicas acknowledged `offset` or `timeout` passes; returns how many did.
    func waitForAcks(replicas wanted: Int, offset: Int64, timeout: TimeInterval) -> Int {
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock()
        defer { condition.unlock() }
        while countAcked(offset) < wanted {
            if !condition.wait(until: deadline) { break }
        }
        return countAcked(offset)
    }

    /// Answers every pending WAIT with the count now (shutdown).
    func releaseWaiters() {
        let all: [(EventLoopPromise<Int>, Int)] = locked {
            defer { waiters = [] }
            return waiters.map { ($0.promise, countAcked($0.offset)) }
        }
        for (p, n) in all { p.succeed(n) }
    }

    /// WAIT without blocking a thread: succeeds with the count once `replicas` acknowledged `offset`, or
    /// with the count then at `timeoutMillis` (0: no limit).
    func waitForAcks(replicas wanted: Int, offset: Int64, timeoutMillis: Int, on loop: EventLoop) -> EventLoopFuture<Int> {
        let promise = loop.makePromise(of: Int.self)
        let id: Int? = locked {
            let n = countAcked(offset)
            if n >= wanted {
                promise.succeed(n)
                return nil
            }
            nextWaiter += 1
            waiters.append(AsyncWaiter(id: nextWaiter, replicas: wanted, offset: offset, promise: promise))
            return nextWaiter
        }
        if let id, timeoutMillis > 0 {
            loop.scheduleTask(in: .milliseconds(Int64(min(timeoutMillis, Int(Int32.max))))) { [self] in
                let n: Int? = locked {
                    guard let i = waiters.firstIndex(where: { $0.id == id }) else { return nil }
                    waiters.remove(at: i)
                    return countAcked(offset)
                }
                if let n { promise.succeed(n) }
            }
        }
        return promise.futureResult
    }
}
