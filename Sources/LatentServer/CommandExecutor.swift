import Foundation
import LatentEngine
import LatentIndex
import LatentProtocol
import LatentVectors
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Per-connection state that commands read and change.
///
/// Guarding: `authentication` has its own lock (the decoder reads it on the event loop); `name` is only
/// touched by the connection's requests, which run one batch at a time (RESPServerHandler), so never
/// concurrently; `id` is immutable.
public final class Session: @unchecked Sendable {
    public let id: Int
    public let authentication: AuthenticationState
    public var name = "" {
        didSet { record?.name = name }
    }
    /// MULTI's queue (nil outside a transaction) and WATCH's marks; touched only by the connection's
    /// own requests, one batch at a time, like `name`.
    public var transaction: QueuedTransaction?
    var watched: [String: WatchMark] = [:]
    /// RESP2 until `HELLO 3`; replies are encoded in it.
    public var protocolVersion: RESPVersion = .resp2
    /// The connection's CLIENT LIST record (nil for sessions without a connection, in tests).
    public var record: ClientRecord?
    /// The stream offset after this connection's last write (WAIT waits for replicas to reach it). Set by
    /// its batch on a worker, read by its handler after that batch completed: never concurrently.
    public var lastWriteOffset: Int64 = 0
    /// REPLCONF listening-port, as a replica announces it before PSYNC; touched like `name`.
    public var replicaListeningPort = 0
    /// The session a replica's link applies its leader's stream in: may write on a replica.
    public var isReplicationLink = false

    public var authenticated: Bool {
        get { authentication.isAuthenticated }
        set { authentication.isAuthenticated = newValue }
    }

    public init(id: Int, authenticated: Bool) {
        self.id = id
        self.authentication = AuthenticationState(authenticated: authenticated)
    }
}

/// What the connection does after sending a reply.
public enum AfterReply: Equatable, Sendable {
    case none
    case close
    /// Close the connection without a reply and shut the server down (SHUTDOWN).
    case shutdown
}

public struct Outcome: Equatable, Sendable {
    public var reply: RESPValue
    public var after: AfterReply = .none
    /// The protocol to encode the reply in: the session's after the command ran (HELLO 3's own reply is RESP3).
    public var version: RESPVersion = .resp2
}

/// Runs requests against the catalog. No sockets: the connection handler hands it batches of requests
/// on a worker thread, and tests call it directly.
/// All fields are immutable references to thread-safe objects (each guards its own state).
public final class CommandExecutor: @unchecked Sendable {
    /// The catalog requests run against. A replica replaces it when it installs a full copy from its
    /// leader (under `gate` held for writing, so no request runs during the swap): always read it
    /// through here. Guarded by its box.
    public var catalog: CollectionCatalog { catalogBox.withLockedValue { $0 } }
    let catalogBox: NIOLockedValueBox<CollectionCatalog>
    /// Leader or replica, the replication stream and the link to a leader (CommandExecutor+Replication.swift).
    public let replication: ReplicationController
    public let settings: RuntimeConfiguration
    public let stats: ServerStats
    public let cache: ResultCache
    public let clients = ClientRegistry()
    /// SLOWLOG's entries (SlowLog.swift).
    public let slowLog = SlowLog()
    /// Online backups in progress (BACKUP START / READ / END).
    public let backups: BackupSessions
    /// VERIFY's background run and last result.
    public let verification = BackgroundVerification()
    /// The Prometheus series (nil without --metrics-port).
    public let metrics: ServerMetrics?
    /// INFO's cluster section, from the cluster module above the server when the node is a member (set
    /// by latentd once it joined); nil: `cluster_enabled:0`.
    public let clusterInfo = NIOLockedValueBox<(@Sendable () -> [(String, String)])?>(nil)
    /// The cluster's fencing: an error for writes while this node may have lost its leadership (set by
    /// latentd when it runs cluster failover); nil: no cluster.
    public let clusterWriteRefusal = NIOLockedValueBox<(@Sendable () -> String?)?>(nil)
    let logger = Logger(label: "latentd.slowlog")
    /// Held for reading by every request (except PING/ECHO) and for writing by EXEC: transactions are
    /// isolated from other clients' commands (CommandExecutor+Transactions.swift).
    let gate = ReadWriteLock()
    /// Set when memory holds writes the store refused (a failed EXEC commit): every request but INFO,
    /// PING and SHUTDOWN is refused until a restart. Guarded by its box.
    let divergedReason = NIOLockedValueBox<String?>(nil)

    func diverge(_ reason: String) { divergedReason.withLockedValue { $0 = reason } }

    /// The effective configuration now (CONFIG SET may change it between requests).
    public var configuration: ServerConfiguration { settings.current }

    public convenience init(catalog: CollectionCatalog, configuration: ServerConfiguration, stats: ServerStats = ServerStats()) {
        self.init(catalog: catalog, settings: RuntimeConfiguration(configuration), stats: stats)
    }

    public init(catalog: CollectionCatalog, settings: RuntimeConfiguration, stats: ServerStats = ServerStats(),
                metrics: ServerMetrics? = nil) {
        catalogBox = NIOLockedValueBox(catalog)
        replication = ReplicationController(backlogBytes: settings.current.replBacklogBytes)
        self.metrics = metrics
        backups = BackupSessions(directory: catalog.store.directory)
        self.settings = settings
        self.stats = stats
        let cache = ResultCache(capacityBytes: settings.current.queryCacheBytes)
        self.cache = cache
        settings.observe { cache.resize(capacityBytes: $0.queryCacheBytes) }
        let slowLog = self.slowLog
        settings.observe { slowLog.trim(to: $0.slowlogMaxLength) }
        let leader = replication.leader
        settings.observe { leader.setBacklogCapacity($0.replBacklogBytes) }
        observeExpiry(of: catalog)
    }

    /// Runs a pipelined batch in order. Writes in the batch are made durable together (one WAL sync
    /// under `--fsync always`) before any reply is released, so an acknowledged write is never lost.
    /// Runs requests of `batch` in order and returns one outcome per request run: all of them, or fewer
    /// when one ends the connection, the client is gone (`isCancelled`), or the replies so far reach
    /// `replyBudgetBytes` (the caller runs the rest in a later batch).
    /// Names of the commands that write (Command.isWrite), upper-case, for routing before parsing.
    static let writeNames: Set<String> = ["VCREATE", "VADD", "VREM", "VSETATTR", "VDROP", "VREBUILD", "VRENAME", "VSETSEEN",
                                          "VADDSEEN", "VREMSEEN",
                                          "DEL", "UNLINK", "RENAME", "RENAMENX", "FLUSHDB", "FLUSHALL", "EXPIRE", "PEXPIRE",
                                          "EXPIREAT", "PEXPIREAT", "PERSIST", "EXEC"]

    /// Whether a request names a write command (judged from the raw name: routing only, so a
    /// misjudged request still runs correctly, just on the other pool).
    public static func writesByName(_ args: [ByteBuffer]) -> Bool {
        guard let name = args.first, (3...9).contains(name.readableBytes) else { return false }
        return writeNames.contains(String(decoding: name.readableBytesView.map { $0 & 0xDF }, as: UTF8.self))
    }

    /// Whether a request is one the event loop answers itself (PING, ECHO: no lock, no I/O, a bounded
    /// reply). Judged from the raw name, before parsing.
    public static func answersOnEventLoop(_ args: [ByteBuffer]) -> Bool {
        guard let name = args.first, args.count <= 2, name.readableBytes == 4 else { return false }
        return name.withUnsafeReadableBytes { raw in
            let upper = raw.map { $0 & 0xDF }
            return upper.elementsEqual("PING".utf8) || upper.elementsEqual("ECHO".utf8)
        }
    }

    public func execute(batch: [[ByteBuffer]], session: Session, isCancelled: () -> Bool = { false },
                        replyBudgetBytes: Int = .max) -> [Outcome] {
        var replyBytes = 0
        var outcomes: [Outcome] = []
        outcomes.reserveCapacity(batch.count)
        var runs: [ServerStats.Run] = []
        var wrote: [Int] = []
        var position = 0
        let slowerThan = configuration.slowlogSlowerThanMicroseconds
        while position < batch.count {
            // The client is gone: its remaining requests are not run (their replies could not be sent).
            if isCancelled() { break }
            let started = DispatchTime.now().uptimeNanoseconds
            if let group = vaddGroup(batch, from: position, session: session) {
                let groupArgs = Array(batch[position..<(position + group.count)])
                let groupOutcomes = inWriteOrder(groupArgs, session: session, { runVAddGroup(group, session: session) }) { outcomes in
                    zip(groupArgs, outcomes).filter { !$0.1.reply.isError }.map(\.0)
                }
                // One batch write for the group: each VADD is charged an equal share of its time.
                let each = (DispatchTime.now().uptimeNanoseconds - started) / 1000 / UInt64(max(groupOutcomes.count, 1))
                for (i, var outcome) in groupOutcomes.enumerated() {
                    outcome.version = session.protocolVersion
                    runs.append(ServerStats.Run(name: "vadd", microseconds: each, rejected: false, failed: outcome.reply.isError))
                    logIfSlow(batch[position + i], microseconds: each, slowerThan: slowerThan, session: session)
                    if !outcome.reply.isError { wrote.append(outcomes.count) }
                    replyBytes += ResultCache.size(of: outcome.reply)
                    outcomes.append(outcome)
                }
                position += group.count
                if replyBytes >= replyBudgetBytes { break }
                continue
            }
            let args = batch[position]
            position += 1
            let wasInMulti = session.transaction != nil
            let queued = session.transaction?.requests.map(\.args)
            var (outcome, command) = inWriteOrder([args], session: session, { execute(args, session: session) }) { result in
                streamEntries(args, command: result.1, outcome: result.0, queued: queued, wasInMulti: wasInMulti)
            }
            let micros = (DispatchTime.now().uptimeNanoseconds - started) / 1000
            outcome.version = session.protocolVersion
            if let command {
                // As Redis: a request that never ran (unparsable, or refused) is not a slow command.
                let rejected = outcome.reply.errorCode.map { CommandExecutor.rejectionCodes.contains($0) } ?? false
                runs.append(ServerStats.Run(name: command.name, microseconds: micros, rejected: rejected,
                                            failed: outcome.reply.isError && !rejected))
                if command.isWrite && !outcome.reply.isError { wrote.append(outcomes.count) }
                if !rejected { logIfSlow(args, microseconds: micros, slowerThan: slowerThan, session: session) }
            }
            outcomes.append(outcome)
            if outcome.after != .none { break }
            replyBytes += ResultCache.size(of: outcome.reply)
            if replyBytes >= replyBudgetBytes { break }
        }
        if !wrote.isEmpty {
            do {
                try catalog.commitBeforeReply()
            } catch {
                let code = (error as? EngineError)?.code ?? "ERR"
                for i in wrote { outcomes[i].reply = .error("\(code) write not made durable: \(error)") }
            }
        }
        if !wrote.isEmpty { holdForReplicas(wrote: wrote, outcomes: &outcomes, session: session) }
        let errors = outcomes.filter { $0.reply.isError }.count
        stats.record(runs, errors: errors)
        metrics?.record(runs)
        return outcomes
    }

    /// Errors that refuse a command before it runs: Redis counts them as rejected_calls, not failed_calls.
    static let rejectionCodes: Set<String> = ["NOAUTH", "MISCONF", "READONLY", "NOREPLICAS", "CLUSTERDOWN"]

    /// Adds a request to the slow log when it took at least `slowerThan` microseconds (negative: off).
    private func logIfSlow(_ args: [ByteBuffer], microseconds: UInt64, slowerThan: Int, session: Session) {
        guard slowerThan >= 0, microseconds >= UInt64(slowerThan) else { return }
        let client = session.record?.address ?? ""
        slowLog.record(arguments: args, microseconds: Int(microseconds), client: client, clientName: session.name,
                       maxLength: configuration.slowlogMaxLength)
        logger.notice("slow command", metadata: [
            "command": .string(args.first.map { String(buffer: $0).lowercased() }.map { String($0.prefix(32)) } ?? ""),
            "usec": .stringConvertible(microseconds), "client": .string(client),
        ])
    }

    func execute(_ args: [ByteBuffer], session: Session) -> (Outcome, Command?) {
        let parsed: Result<Command, Error> = Result { try CommandParser.parse(args) }
        if !session.authenticated {
            switch parsed {
            case .success(.auth), .success(.hello), .success(.quit): break
            case .failure where isAllowedBeforeAuth(args): break
            default: return (Outcome(reply: .error(noAuth)), try? parsed.get())
            }
        }
        if case .success(let c) = parsed, c.isWrite, c != .exec, let refusal = writeRefusal(session) {
            session.transaction?.aborted = true
            return (Outcome(reply: .error(refusal)), c)
        }
        if session.transaction != nil {
            return (queueInTransaction(args, parsed, session: session), try? parsed.get())
        }
        let command: Command
        switch parsed {
        case .success(let c): command = c
        case .failure(let e as CommandError): return (Outcome(reply: .err(e.message)), nil)
        case .failure(let e): return (Outcome(reply: .err("\(e)")), nil)
        }
        if let reason = divergedReason.withLockedValue({ $0 }) {
            switch command {
            case .info, .ping, .shutdown, .quit: break
            default: return (Outcome(reply: .error("MISCONF \(reason)")), command)
            }
        }
        if let outcome = runTransactionCommand(command, session: session) { return (outcome, command) }
        // PING and ECHO take no lock: they run on the event loop, which must never wait for an EXEC.
        if Self.answersOnEventLoop(args) { return (runParsed(command, args: args, session: session), command) }
        // REPLICAOF waits for the replica's link to finish what it applies, and the link may be installing a
        // copy, which takes the gate for writing: REPLICAOF must not hold the gate meanwhile.
        if case .replicaOf = command { return (runParsed(command, args: args, session: session), command) }
        return (gate.withReadLock { runParsed(command, args: args, session: session) }, command)
    }

    /// Runs a parsed request (the caller holds `gate` as needed), turning errors into error replies.
    func runParsed(_ command: Command, args: [ByteBuffer], session: Session) -> Outcome {
        do {
            if case .vsim(let request) = command, cache.isEnabled {
                return Outcome(reply: try cachedSimilar(request, args: args))
            }
            return try run(command, session: session)
        } catch {
            return Outcome(reply: Self.errorReply(error))
        }
    }

    private let noAuth = "NOAUTH Authentication required."

    /// CLIENT subcommands: naming, library info, ids, CLIENT LIST / INFO with Redis' fields (qbuf and
    /// omem are the real buffer sizes), KILL ID, and the connection flags clients send on connect.
    private func client(_ sub: String, _ arguments: [String], session: Session) -> RESPValue {
        switch sub {
        case "setinfo":
            guard arguments.count == 2 else { return .err("syntax error: CLIENT SETINFO LIB-NAME|LIB-VER value") }
            switch arguments[0].lowercased() {
            case "lib-name": session.record?.setLibrary(name: arguments[1], version: nil)
            case "lib-ver": session.record?.setLibrary(name: nil, version: arguments[1])
            default: return .err("Unrecognized option '\(arguments[0].prefix(64))'")
            }
            return .ok
        case "setname":
            guard arguments.count == 1 else { return .err("wrong number of arguments for 'client|setname' command") }
            guard Self.validClientName(arguments[0]) else {
                return .err("Client names cannot contain spaces, newlines or special characters.")
            }
            session.name = arguments[0]
            return .ok
        case "getname": return session.name.isEmpty ? .null : .bulk(session.name)
        case "id": return .integer(session.id)
        case "list":
            let lines = clients.all.map { $0.listLine() }
            return .verbatim(lines.map { $0 + "\n" }.joined())
        case "info":
            return .verbatim((clients.record(session.id)?.listLine() ?? "id=\(session.id)") + "\n")
        case "kill":
            guard arguments.count == 2, arguments[0].lowercased() == "id", let id = Int(arguments[1]) else {
                return .err("syntax error: latentd supports CLIENT KILL ID client-id")
            }
            guard let target = clients.record(id) else { return .err("No such client") }
            target.close()
            return .integer(1)
        case "no-evict", "no-touch":
            return arguments.first.map { ["on", "off"].contains($0.lowercased()) } == true ? .ok : .err("syntax error")
        case "tracking":
            return arguments.first?.lowercased() == "off" ? .ok : .err("CLIENT TRACKING ON is not supported: latentd has no key-space notifications")
        default:
            return .err("unknown CLIENT subcommand '\(sub.prefix(64))': use SETINFO, SETNAME, GETNAME, ID, LIST, INFO, KILL, NO-EVICT, NO-TOUCH or TRACKING")
        }
    }

    /// Redis' rule for client names: printable ASCII without spaces.
    static func validClientName(_ name: String) -> Bool {
        name.utf8.allSatisfy { $0 > 32 && $0 < 127 }
    }

    /// CONFIG GET with Redis' glob patterns over every directive, plus the Redis settings clients ask
    /// about on connect (save, appendonly, databases) with the values that describe latentd.
    private func configGet(_ patterns: [String]) -> [RESPValue] {
        let config = configuration
        var known: [(String, String)] = ConfigSchema.directives.map { ($0.name, $0.get(config)) }
        known += [("save", ""), ("appendonly", "no"), ("databases", "1")]
        var out: [RESPValue] = []
        var seen = Set<String>()
        for pattern in patterns.map({ $0.lowercased() }) {
            for (k, v) in known where fnmatch(pattern, k, 0) == 0 && seen.insert(k).inserted {
                out += [.bulk(k), .bulk(v)]
            }
        }
        return out
    }

    /// AUTH and HELLO ... AUTH: user "default" only; the password compared as bytes in constant time.
    private func authenticate(user: String?, password: [UInt8], session: Session) -> RESPValue {
        guard let expected = configuration.password else {
            return .err("AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
        }
        guard user == nil || user == "default", Self.constantTimeEqual(password, Array(expected.utf8)) else {
            return .error("WRONGPASS invalid username-password pair or user is disabled.")
        }
        session.authenticated = true
        return .ok
    }

    /// Byte equality whose time depends only on the lengths, not on where the bytes differ.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(truncatingIfNeeded: a.count ^ b.count)
        if a.count != b.count { difference |= 1 }
        let n = max(a.count, b.count)
        for i in 0..<n {
            let x = i < a.count ? a[i] : 0
            let y = i < b.count ? b[i] : 0
            difference |= x ^ y
        }
        return difference == 0
    }

    private func isAllowedBeforeAuth(_ args: [ByteBuffer]) -> Bool {
        guard let first = args.first else { return false }
        return ["auth", "hello", "quit"].contains(String(buffer: first).lowercased())
    }

    private func run(_ command: Command, session: Session) throws -> Outcome {
        switch command {
        case .ping(let message):
            return Outcome(reply: message.map { .bulk($0) } ?? .simpleString("PONG"))
        case .echo(let message):
            return Outcome(reply: .bulk(message))
        case .quit:
            return Outcome(reply: .ok, after: .close)
        case .auth(let user, let password):
            return Outcome(reply: authenticate(user: user, password: password, session: session))
        case .hello(let version, let credentials, let setName):
            let requested: RESPVersion?
            if let version {
                guard let v = RESPVersion(rawValue: version) else {
                    return Outcome(reply: .error("NOPROTO unsupported protocol version"))
                }
                requested = v
            } else {
                requested = nil
            }
            if let credentials {
                let reply = authenticate(user: credentials.user, password: credentials.password, session: session)
                if reply.isError { return Outcome(reply: reply) }
            }
            if !session.authenticated {
                return Outcome(reply: .error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"))
            }
            if let setName {
                guard Self.validClientName(setName) else {
                    return Outcome(reply: .err("Client names cannot contain spaces, newlines or special characters."))
                }
                session.name = setName
            }
            if let requested { session.protocolVersion = requested }
            return Outcome(reply: .map([
                ("server", .bulk("redis")), ("version", .bulk(InfoReport.redisVersion)),
                ("proto", .integer(session.protocolVersion.rawValue)), ("id", .integer(session.id)),
                ("mode", .bulk("standalone")), ("role", .bulk("master")), ("modules", .array([])),
            ]))
        case .info(let sections):
            // Verbatim text in RESP3, a bulk string in RESP2, as Redis answers INFO.
            return Outcome(reply: .verbatim(InfoReport(executor: self).render(sections: sections)))
        case .shutdown:
            return Outcome(reply: .ok, after: .shutdown)
        case .command(let sub):
            // redis-cli asks for COMMAND DOCS on connect; an empty answer makes it fall back to plain mode.
            return Outcome(reply: sub == "count" ? .integer(0) : .array([]))
        case .configGet(let patterns):
            return Outcome(reply: .map(configGet(patterns))) // flat pairs in RESP2, a map in RESP3, as Redis 7+
        case .configSet(let flat):
            let pairs = stride(from: 0, to: flat.count, by: 2).map { (flat[$0], flat[$0 + 1]) }
            do {
                try settings.set(pairs)
            } catch let e as ConfigValueError {
                return Outcome(reply: .err(e.description))
            }
            return Outcome(reply: .ok)
        case .configRewrite:
            do {
                try settings.rewrite()
            } catch {
                return Outcome(reply: .err("\(error)"))
            }
            return Outcome(reply: .ok)
        case .configResetStat:
            stats.reset()
            return Outcome(reply: .ok)
        case .slowlog(let request):
            return Outcome(reply: slowlog(request))
        case .backup(let request):
            return Outcome(reply: try backup(request, session: session))
        case .verify:
            guard verification.start(catalog: catalog) else { return Outcome(reply: .err("a verification is already running: see INFO persistence")) }
            return Outcome(reply: .simpleString("Background verification started"))
        case .compact(let key):
            let steps = try catalog.compact(key)
            return Outcome(reply: .map([
                ("column-families", .integer(steps.count)),
                ("sst-bytes-before", .integer(Int(clamping: steps.reduce(0) { $0 + $1.sstBytesBefore }))),
                ("sst-bytes-after", .integer(Int(clamping: steps.reduce(0) { $0 + $1.sstBytesAfter }))),
                ("seconds", .double(steps.reduce(0) { $0 + $1.seconds })),
            ]))
        case .client(let sub, let arguments):
            return Outcome(reply: client(sub, arguments, session: session))
        case .select(let db):
            return Outcome(reply: db == 0 ? .ok : .err("DB index is out of range: latentd has database 0 only"))
        case .dbsize:
            return Outcome(reply: .integer(catalog.names.count))
        case .replicaOf, .role, .wait, .replconf, .psync:
            return Outcome(reply: try runReplicationCommand(command, session: session) ?? .err("internal error"))
        default:
            if let reply = try runKeyspaceCommand(command) { return Outcome(reply: reply) }
            return Outcome(reply: try runVectorCommand(command))
        }
    }
}
