import LatentEngine
import LatentProtocol
import NIOCore

/// Group commit for pipelined VADDs: a run of consecutive VADDs to one key in a connection's batch is
/// written with one RocksDB write instead of one per element (`Collection.upsert(_:)`).
///
/// Replies are exactly those of running the requests one by one: each request is checked on its own
/// (a bad one gets its own error and does not stop the others), items apply in order, and a failed
/// write fails every request of the group with nothing changed in memory, as a failed single write
/// does. Only the cost changes: one WAL append, one writer-mutex round and one gate hold per group.
/// Requests inside MULTI, before AUTH or on a diverged server take the ordinary path.
extension CommandExecutor {
    /// The most VADDs written together (bounds the WriteBatch and the time the writer mutex is held).
    static let maxVAddGroup = 256

    /// The VADDs to one key that start at `start` in `batch` (with their parsed requests), when there
    /// are at least two and the session runs commands directly.
    func vaddGroup(_ batch: [[ByteBuffer]], from start: Int, session: Session) -> [VAddRequest]? {
        // The names are compared first, so requests that cannot group (anything but two VADDs in a row) are
        // not parsed here as well as in `execute`.
        guard start + 1 < batch.count, Self.isVAdd(batch[start]), Self.isVAdd(batch[start + 1]),
              session.authenticated, session.transaction == nil, divergedReason.withLockedValue({ $0 }) == nil, writeRefusal(session) == nil,
              case .vadd(let first)? = try? CommandParser.parse(batch[start]) else { return nil }
        var group = [first]
        var next = start + 1
        while next < batch.count, group.count < Self.maxVAddGroup, Self.isVAdd(batch[next]),
              case .vadd(let request)? = try? CommandParser.parse(batch[next]), request.key == first.key {
            group.append(request)
            next += 1
        }
        return group.count >= 2 ? group : nil
    }

    /// Whether a request is named VADD (any case), read from its bytes without parsing it.
    static func isVAdd(_ args: [ByteBuffer]) -> Bool {
        guard let name = args.first, name.readableBytes == 4 else { return false }
        return name.withUnsafeReadableBytes { raw in raw.map { $0 & 0xDF }.elementsEqual("VADD".utf8) }
    }

    /// Runs a VADD group under the gate (as any command): one outcome per request, in order.
    func runVAddGroup(_ requests: [VAddRequest], session: Session) -> [Outcome] {
        gate.withReadLock {
            var replies = [RESPValue?](repeating: nil, count: requests.count)
            // Consecutive prepared items for the same collection are written together.
            var run: [(index: Int, item: Collection.Upsert)] = []
            var runCollection: Collection?
            func flush() {
                guard let c = runCollection, !run.isEmpty else { return }
                do {
                    let results = try c.upsert(run.map(\.item))
                    for (k, result) in results.enumerated() {
                        switch result {
                        case .success(let added): replies[run[k].index] = .boolean(added)
                        case .failure(let error): replies[run[k].index] = Self.errorReply(error)
                        }
                    }
                } catch {
                    // The whole group failed before writing (the set was dropped meanwhile): one by one.
                    for (index, _) in run { replies[index] = runParsed(.vadd(requests[index]), args: [], session: session).reply }
                }
                run = []
            }
            for (i, request) in requests.enumerated() {
                do {
                    let (c, item) = try prepareAdd(request)
                    if runCollection !== c { flush(); runCollection = c }
                    run.append((i, item))
                } catch {
                    flush()
                    replies[i] = Self.errorReply(error)
                }
            }
            flush()
            return replies.map { Outcome(reply: $0 ?? .err("internal error: VADD got no reply")) }
        }
    }

    /// The error reply for an error thrown by a command (as `runParsed` answers it).
    static func errorReply(_ error: Error) -> RESPValue {
        switch error {
        case let e as EngineError: return .error("\(e.code) \(e.message)")
        case let e as CommandError: return .err(e.message)
        default: return .err("\(error)")
        }
    }
}
