import Foundation
import NIOConcurrencyHelpers

/// Counters shown by INFO. Updated from the worker threads; one lock, held for a moment per batch.
/// Guarding: the counters live in a NIOLockedValueBox; `startTime` is immutable.
public final class ServerStats: @unchecked Sendable {
    private struct Counters {
        var connectedClients = 0
        var totalConnections = 0
        var rejectedConnections = 0
        var totalCommands = 0
        var errorReplies = 0
        var calls: [String: Int] = [:]
    }
    private let counters = NIOLockedValueBox(Counters())
    public let startTime = Date()

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

    func record(calls: [String], errors: Int) {
        counters.withLockedValue {
            $0.totalCommands += calls.count
            $0.errorReplies += errors
            for c in calls { $0.calls[c, default: 0] += 1 }
        }
    }

    public var connectedClients: Int { counters.withLockedValue { $0.connectedClients } }

    func snapshot() -> (connected: Int, total: Int, rejected: Int, commands: Int, errors: Int, calls: [String: Int]) {
        counters.withLockedValue { ($0.connectedClients, $0.totalConnections, $0.rejectedConnections,
                                    $0.totalCommands, $0.errorReplies, $0.calls) }
    }
}
