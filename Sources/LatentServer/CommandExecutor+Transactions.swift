import Foundation
import LatentEngine
import LatentProtocol
import LatentStorage
import NIOCore

/// A connection's open MULTI: the requests queued so far and whether one of them was rejected.
public struct QueuedTransaction: Sendable {
    var requests: [(args: [ByteBuffer], command: Command)] = []
    /// A queued request failed to parse: EXEC answers EXECABORT.
    var aborted = false
}

/// What WATCH saw of a key: the collection's never-reused id and its write version (nil: no such key).
struct WatchMark: Equatable, Sendable {
    var collection: UInt32?
    var version: UInt64
}

/// MULTI / EXEC / DISCARD / WATCH / UNWATCH with Redis' semantics, and one thing Redis cannot give:
/// the writes of an EXEC reach RocksDB in a single WriteBatch (StoreTransaction), so after a crash
/// either all of them are there or none.
///
/// Isolation: every request other than PING/ECHO holds `gate` for reading while it runs; EXEC holds it
/// for writing, so no other client's command interleaves with a transaction's (Redis' guarantee).
extension CommandExecutor {
    /// Handles a request while the session is inside MULTI: transaction commands run, the rest are queued.
    func queueInTransaction(_ args: [ByteBuffer], _ parsed: Result<Command, Error>, session: Session) -> Outcome {
        switch parsed {
        case .failure(let error):
            session.transaction?.aborted = true
            let message = (error as? CommandError)?.message ?? "\(error)"
            return Outcome(reply: .err(message))
        case .success(let command):
            switch command {
            case .exec: return exec(session: session)
            case .discard:
                session.transaction = nil
                session.watched = [:]
                return Outcome(reply: .ok)
            case .multi: return Outcome(reply: .err("MULTI calls can not be nested"))
            case .watch: return Outcome(reply: .err("WATCH inside MULTI is not allowed"))
            case .quit: return Outcome(reply: .ok, after: .close)
            case .shutdown, .hello, .auth:
                // Connection-level commands are not transactional; Redis rejects them inside MULTI too.
                session.transaction?.aborted = true
                return Outcome(reply: .err("Command not allowed inside a transaction"))
            default:
                session.transaction?.requests.append((args, command))
                return Outcome(reply: .simpleString("QUEUED"))
            }
        }
    }

    /// MULTI, WATCH, UNWATCH, and EXEC / DISCARD outside a transaction.
    func runTransactionCommand(_ command: Command, session: Session) -> Outcome? {
        switch command {
        case .multi:
            session.transaction = QueuedTransaction()
            return Outcome(reply: .ok)
        case .exec: return Outcome(reply: .err("EXEC without MULTI"))
        case .discard: return Outcome(reply: .err("DISCARD without MULTI"))
        case .watch(let keys):
            for k in keys where session.watched[k] == nil { session.watched[k] = watchMark(k) }
            return Outcome(reply: .ok)
        case .unwatch:
            session.watched = [:]
            return Outcome(reply: .ok)
        default:
            return nil
        }
    }

    private func watchMark(_ key: String) -> WatchMark {
        guard let c = catalog.collection(key) else { return WatchMark(collection: nil, version: 0) }
        return WatchMark(collection: c.collectionId, version: c.writeVersion)
    }

    private func exec(session: Session) -> Outcome {
        guard let transaction = session.transaction else { return Outcome(reply: .err("EXEC without MULTI")) }
        let watched = session.watched
        session.transaction = nil
        session.watched = [:]
        if transaction.aborted {
            return Outcome(reply: .error("EXECABORT Transaction discarded because of previous errors."))
        }
        return gate.withWriteLock {
            // A watched key written (or created, dropped, renamed, expired) since WATCH: nothing runs.
            for (key, mark) in watched where watchMark(key) != mark { return Outcome(reply: .nullArray) }
            let writes = transaction.requests.contains { $0.command.isWrite }
            if writes, let status = catalog.storageStatus, !status.writesOK {
                return Outcome(reply: .error("EXECABORT Transaction discarded: MISCONF the store is not taking writes: "
                                             + (status.lastError ?? "see INFO persistence")))
            }
            var replies: [RESPValue] = []
            var after = AfterReply.none
            do {
                try StoreTransaction.run(on: catalog.store.db, sync: writes && catalog.fsync == .always) {
                    for (args, command) in transaction.requests {
                        let outcome = runParsed(command, args: args, session: session)
                        replies.append(outcome.reply)
                        if outcome.after != .none { after = outcome.after }
                    }
                }
            } catch {
                // The commands changed memory but their writes did not reach the disk: serving on would
                // show data a restart loses. Stop serving and say how to recover.
                let message = "an EXEC's writes could not be written (\(error)); memory is ahead of the store. "
                    + "Restart latentd to serve the durable state."
                diverge(message)
                replies = transaction.requests.map { $0.command.isWrite ? RESPValue.error("MISCONF \(message)") : .null }
            }
            return Outcome(reply: .array(replies), after: after)
        }
    }
}
