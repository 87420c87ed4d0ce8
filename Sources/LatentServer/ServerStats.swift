import Atomics
import Foundation
import Histogram
import NIOConcurrencyHelpers

/// Counters shown by INFO. Updated from the worker threads; one lock, held for a moment per batch.
/// Guarding: the counters live in a NIOLockedValueBox; the byte counters are atomics (updated by the
/// event loops on every read and write, so not behind the lock); `startTime` is immutable.
public final class ServerStats: @unchecked Sendable {
    /// One command's figures for INFO commandstats and latencystats (Redis' fields).
    public struct CommandStats: Sendable {
        public var calls = 0
        /// Total execution time, microseconds.
        public var microseconds: UInt64 = 0
        /// Refused before running (NOAUTH, MISCONF).
        public var rejected = 0
        /// Ran and replied with an error.
        public var failed = 0
        /// Execution times in microseconds, 1 us to 1 hour at 2 significant digits (Redis' precision for
        /// latencystats); a longer time is recorded as an hour.
        public var latency = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: ServerStats.longestTracked,
                                               numberOfSignificantValueDigits: .two)
    }

    static let longestTracked: UInt64 = 3_600_000_000

    /// One command run, as the executor reports it.
    struct Run {
        let name: String
        let microseconds: UInt64
        let rejected: Bool
        let failed: Bool
    }

    private struct Counters {
        var connectedClients = 0
        var totalConnections = 0
        var rejectedConnections = 0
        var totalCommands = 0
        var errorReplies = 0
        var commands: [String: CommandStats] = [:]
    }
    private let counters = NIOLockedValueBox(Counters())
    public let startTime = Date()
    /// Request bytes received (the arguments' bytes, RESP framing not counted) and reply bytes sent.
    let inputBytes = ManagedAtomic<Int>(0)
    let outputBytes = ManagedAtomic<Int>(0)

    public init() {}

    /// Registers a new connection; false when `maxClients` are already connected.
    func connectionOpened(maxClients: Int) -> Bool {
        counters.withLockedValue {
            $0.totalConnections += 1
            guard $0.connectedClients < maxClients else {
                $0.rejectedConnections += 1
                return false
            }
            $0.connectedClients += 1
            return true
        }
    }

    func connectionClosed() { counters.withLockedValue { $0.connectedClients -= 1 } }

    /// A batch's commands (`runs`) and its error replies (`errors`, which also counts requests that
    /// never parsed into a command).
    func record(_ runs: [Run], errors: Int) {
        counters.withLockedValue {
            $0.totalCommands += runs.count
            $0.errorReplies += errors
            for run in runs {
                var s = $0.commands[run.name, default: CommandStats()]
                if run.rejected {
                    s.rejected += 1
                } else {
                    s.calls += 1
                    s.microseconds &+= run.microseconds
                    _ = s.latency.record(Swift.min(Swift.max(run.microseconds, 1), ServerStats.longestTracked))
                    if run.failed { s.failed += 1 }
                }
                $0.commands[run.name] = s
            }
        }
    }

    /// CONFIG RESETSTAT: commands, errors, connections received and the per-command figures.
    func reset() {
        counters.withLockedValue {
            $0.totalConnections = 0
            $0.rejectedConnections = 0
            inputBytes.store(0, ordering: .relaxed)
            outputBytes.store(0, ordering: .relaxed)
            $0.totalCommands = 0
            $0.errorReplies = 0
            $0.commands = [:]
        }
    }

    public var connectedClients: Int { counters.withLockedValue { $0.connectedClients } }

    public var commands: [String: CommandStats] { counters.withLockedValue { $0.commands } }

    func snapshot() -> (connected: Int, total: Int, rejected: Int, commands: Int, errors: Int) {
        counters.withLockedValue { ($0.connectedClients, $0.totalConnections, $0.rejectedConnections,
                                    $0.totalCommands, $0.errorReplies) }
    }
}
