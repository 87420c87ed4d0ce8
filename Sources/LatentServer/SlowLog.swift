import Foundation
import LatentProtocol
import NIOConcurrencyHelpers
import NIOCore

/// Redis' slow log: the commands whose execution took at least `slowlog-log-slower-than` microseconds
/// (negative: off; 0: every command), newest first, at most `slowlog-max-len` of them. Execution time
/// is the command's own run on its worker thread, excluding socket I/O and the wait for the thread, as
/// Redis measures it. Each entry keeps at most 32 arguments and 128 bytes of each (Redis' limits), so a
/// logged FP32 query costs a few hundred bytes however large it was.
/// Guarding: `state` is a NIOLockedValueBox; everything else is immutable.
public final class SlowLog: @unchecked Sendable {
    public struct Entry: Equatable, Sendable {
        public let id: Int
        /// Unix time, seconds, when the command finished.
        public let timestamp: Int
        public let microseconds: Int
        public let arguments: [[UInt8]]
        /// "ip:port" of the client ("" for sessions without a connection).
        public let client: String
        public let clientName: String
    }

    /// Redis' SLOWLOG_ENTRY_MAX_ARGC and SLOWLOG_ENTRY_MAX_STRING.
    static let maxArguments = 32
    static let maxArgumentBytes = 128

    private struct State {
        var entries: [Entry] = [] // oldest first
        var nextID = 0
    }
    private let state = NIOLockedValueBox(State())

    public init() {}

    /// Logs a command that took `microseconds`, keeping the newest `maxLength` entries.
    func record(arguments: [ByteBuffer], microseconds: Int, client: String, clientName: String, maxLength: Int) {
        let kept = SlowLog.truncated(arguments)
        state.withLockedValue {
            let entry = Entry(id: $0.nextID, timestamp: Int(Date().timeIntervalSince1970), microseconds: microseconds,
                              arguments: kept, client: client, clientName: clientName)
            $0.nextID += 1
            $0.entries.append(entry)
            Self.trim(&$0.entries, to: maxLength)
        }
    }

    /// The newest `count` entries, newest first (`count` < 0: all).
    public func newest(_ count: Int) -> [Entry] {
        state.withLockedValue { s in
            let n = count < 0 ? s.entries.count : min(count, s.entries.count)
            return Array(s.entries.suffix(n).reversed())
        }
    }

    public var count: Int { state.withLockedValue { $0.entries.count } }

    /// Empties the log (ids keep counting, as in Redis).
    public func reset() { state.withLockedValue { $0.entries.removeAll() } }

    /// Drops entries beyond a lowered `slowlog-max-len` at once.
    func trim(to maxLength: Int) {
        state.withLockedValue { Self.trim(&$0.entries, to: maxLength) }
    }

    /// Drops the oldest entries beyond `maxLength` (negative: none kept).
    private static func trim(_ entries: inout [Entry], to maxLength: Int) {
        let excess = entries.count - max(0, maxLength)
        if excess > 0 { entries.removeFirst(excess) }
    }

    /// Redis' shortening: beyond 31 arguments the last kept one says how many more there were; an
    /// argument over 128 bytes keeps its first 128 and says how many more bytes it had.
    static func truncated(_ arguments: [ByteBuffer]) -> [[UInt8]] {
        var kept: [[UInt8]] = []
        let shown = arguments.count > maxArguments ? maxArguments - 1 : arguments.count
        for argument in arguments.prefix(shown) {
            let bytes = Array(argument.readableBytesView)
            if bytes.count > maxArgumentBytes {
                kept.append(Array(bytes.prefix(maxArgumentBytes)) + Array("... (\(bytes.count - maxArgumentBytes) more bytes)".utf8))
            } else {
                kept.append(bytes)
            }
        }
        if arguments.count > maxArguments {
            kept.append(Array("... (\(arguments.count - shown) more arguments)".utf8))
        }
        return kept
    }
}

extension CommandExecutor {
    /// SLOWLOG's replies, shaped as Redis': an entry is [id, unix time, microseconds, [arguments],
    /// "ip:port", client name].
    func slowlog(_ request: SlowlogRequest) -> RESPValue {
        switch request {
        case .get(let count):
            return .array(slowLog.newest(count ?? 10).map { e in
                .array([.integer(e.id), .integer(e.timestamp), .integer(e.microseconds),
                        .array(e.arguments.map { .bulk(bytes: $0) }), .bulk(e.client), .bulk(e.clientName)])
            })
        case .len:
            return .integer(slowLog.count)
        case .reset:
            slowLog.reset()
            return .ok
        case .help:
            return .array([
                "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "GET [<count>]", "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
                "    Entries are made of:", "    id, timestamp, time in microseconds, arguments array, client IP and port,",
                "    client name", "LEN", "    Return the length of the slowlog.", "RESET", "    Reset the slowlog.",
                "HELP", "    Print this help.",
            ].map { RESPValue.simpleString($0) })
        }
    }
}
