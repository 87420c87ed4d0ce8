import Foundation
import LatentEngine
import LatentProtocol
import LatentStorage
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Whether this server leads or follows, and its link when it follows.
///
/// Guarding: `state` is a NIOLockedValueBox; `leader` guards itself; `reopenCatalog` and
/// `listeningPort` are set once by the server before it serves (a replica needs both).
public final class ReplicationController: @unchecked Sendable {
    public let leader: ReplicationLeader
    let state = NIOLockedValueBox<ReplicaLink?>(nil)
    /// Opens the data directory again with the server's options (a replica after installing a copy).
    public var reopenCatalog: (@Sendable () throws -> CollectionCatalog)?
    /// The port this server listens on, told to a leader in REPLCONF listening-port.
    public var listeningPort = 0
    let logger = Logger(label: "latentd.replication")

    init(backlogBytes: Int) { leader = ReplicationLeader(backlogBytes: backlogBytes) }

    /// The link to a leader, nil on a leader.
    public var link: ReplicaLink? { state.withLockedValue { $0 } }
    public var isReplica: Bool { link != nil }
}

extension CommandExecutor {
    /// The error a write gets before it runs here: READONLY on a replica (but not from its link),
    /// NOREPLICAS on a leader with fewer good replicas than --min-replicas-to-write.
    func writeRefusal(_ session: Session) -> String? {
        if replication.isReplica {
            return session.isReplicationLink ? nil : "READONLY You can't write against a read only replica."
        }
        if let fenced = clusterWriteRefusal.withLockedValue({ $0 })?() { return fenced }
        let config = configuration
        if config.minReplicasToWrite > 0,
           replication.leader.goodReplicas(maxLagSeconds: config.minReplicasMaxLagSeconds) < config.minReplicasToWrite {
            return "NOREPLICAS Not enough good replicas to write."
        }
        return nil
    }

    /// With --min-replicas-to-write N, a batch's write replies leave only once N replicas acknowledged
    /// its writes; when they do not within min-replicas-max-lag seconds the replies say so (NOREPLICAS):
    /// the writes are applied here but not known to be anywhere else. Blocks the write worker meanwhile.
    func holdForReplicas(wrote: [Int], outcomes: inout [Outcome], session: Session) {
        let config = configuration
        guard config.minReplicasToWrite > 0, !replication.isReplica, !session.isReplicationLink else { return }
        let got = replication.leader.waitForAcks(replicas: config.minReplicasToWrite, offset: session.lastWriteOffset,
                                                 timeout: TimeInterval(config.minReplicasMaxLagSeconds))
        guard got < config.minReplicasToWrite else { return }
        for i in wrote where !outcomes[i].reply.isError {
            outcomes[i].reply = .error("NOREPLICAS the write was applied on this leader but only \(got) of \(config.minReplicasToWrite) "
                + "replicas acknowledged it within \(config.minReplicasMaxLagSeconds) s; it may be lost if this leader fails")
        }
    }

    /// Runs `body` (write requests) in the catalog's write order and appends what it wrote to the
    /// replication stream; a replica (or a batch without writes) just runs it.
    func inWriteOrder<T>(_ requests: [[ByteBuffer]], session: Session, _ body: () -> T, stream: (T) -> [[ByteBuffer]]) -> T {
        guard !replication.isReplica, requests.contains(where: Self.writesByName) else { return body() }
        let leader = replication.leader
        return catalog.ordered {
            let result = body()
            let entries = stream(result)
            if !entries.isEmpty { session.lastWriteOffset = leader.append(entries) }
            return result
        }
    }

    /// What a request that ran adds to the stream: nothing for errors, reads and requests queued in a
    /// MULTI; MULTI + the queued requests + EXEC for an EXEC that ran; relative expiries as the absolute
    /// PEXPIREAT (or DEL when the key is gone), so a replica expires at the leader's moment; otherwise
    /// the request as received.
    func streamEntries(_ args: [ByteBuffer], command: Command?, outcome: Outcome, queued: [[ByteBuffer]]?, wasInMulti: Bool) -> [[ByteBuffer]] {
        guard let command, command.isWrite, !outcome.reply.isError else { return [] }
        switch command {
        case .exec:
            guard let queued, case .array = outcome.reply else { return [] }
            return [[ByteBuffer(string: "MULTI")]] + queued + [[ByteBuffer(string: "EXEC")]]
        case .expire(let key, _, _, _):
            guard !wasInMulti, outcome.reply == .integer(1) else { return [] }
            if let c = catalog.collection(key), let at = c.expiresAt {
                return [["PEXPIREAT", key, String(at)].map { ByteBuffer(string: $0) }]
            }
            return [["DEL", key].map { ByteBuffer(string: $0) }]
        default:
            return wasInMulti ? [] : [args]
        }
    }

    /// Sends a DEL down the stream for each collection the catalog drops because its time ran out.
    func observeExpiry(of catalog: CollectionCatalog) {
        let leader = replication.leader, replication = self.replication
        catalog.expires = !replication.isReplica
        catalog.observeExpiredDrops { name in
            guard !replication.isReplica else { return }
            leader.append([["DEL", name].map { ByteBuffer(string: $0) }])
        }
    }

    // MARK: Replica side

    /// Applies a piece of the leader's stream (MULTI/EXEC dropped: the whole piece is one batch anyway)
    /// with `position` in the same RocksDB batch.
    func applyReplicated(_ commands: [[ByteBuffer]], position: ReplicationPosition) throws {
        let session = replicationSession
        let requests = commands.filter {
            let name = String(buffer: $0[0]).uppercased()
            return name != "MULTI" && name != "EXEC"
        }
        let catalog = self.catalog
        do {
            try StoreTransaction.run(on: catalog.store.db, sync: catalog.fsync == .always, alsoPut: [position.record]) {
                for outcome in execute(batch: requests, session: session) where outcome.reply.isError {
                    replication.logger.error("a replicated write failed here: \(outcome.reply)")
                }
            }
        } catch {
            let message = "replicated writes could not be stored (\(error)); memory is ahead of the store. Restart latentd."
            diverge(message)
            throw LinkError(message)
        }
    }

    /// Puts a full copy from the leader in place of this replica's store and opens it.
    func installReplicaCopy(from staging: String, position: ReplicationPosition) throws {
        guard let reopen = replication.reopenCatalog else { throw LinkError("this server cannot reopen its store (no reopen function)") }
        try gate.withWriteLock {
            let old = catalog
            let directory = old.store.directory
            old.close()
            let installed: InstalledBackup
            do {
                installed = try InstalledBackup.install(staging, into: directory)
            } catch {
                let again = try reopen()
                observeExpiry(of: again)
                catalogBox.withLockedValue { $0 = again }
                throw error
            }
            let opened: CollectionCatalog
            do {
                opened = try reopen()
                installed.commit()
            } catch {
                try installed.rollback()
                let again = try reopen()
                observeExpiry(of: again)
                catalogBox.withLockedValue { $0 = again }
                throw error
            }
            try opened.store.setReplicationPosition(position)
            observeExpiry(of: opened)
            catalogBox.withLockedValue { $0 = opened }
            cache.clear()
        }
        replication.logger.info("installed a full copy from the leader", metadata: ["offset": "\(position.offset)",
                                                                                   "collections": "\(catalog.names.count)"])
    }

    /// The session the link's writes run in: authenticated, allowed to write on a replica.
    var replicationSession: Session {
        let s = Session(id: 0, authenticated: true)
        s.isReplicationLink = true
        return s
    }

    /// Follows `host:port` (stopping any link first), or with nil host becomes a leader (REPLICAOF NO ONE).
    public func replicate(from host: String?, port: Int) throws {
        let old = replication.state.withLockedValue { l -> ReplicaLink? in
            defer { l = nil }
            return l
        }
        old?.stop()
        guard let host else {
            // Promotion: a new history starting where the applied stream ended; the stored position is
            // removed so this store is never again taken as a copy of the old leader's stream.
            let offset = old?.status.position?.offset ?? replication.leader.offset
            replication.leader.restart(at: offset)
            try catalog.store.setReplicationPosition(nil)
            catalog.expires = true
            if old != nil { replication.logger.notice("promoted to leader", metadata: ["offset": "\(offset)"]) }
            return
        }
        // Replicas of this server are dropped: they follow a history this server leaves.
        for client in clients.all where replication.leader.connectedReplicas.contains(where: { $0.connection == client.id }) {
            client.close()
        }
        catalog.expires = false
        let position = try catalog.store.replicationPosition()
        let link = ReplicaLink(host: host, port: port, executor: self, listeningPort: replication.listeningPort,
                               position: position, logger: replication.logger)
        replication.state.withLockedValue { $0 = link }
        replication.logger.notice("replicating", metadata: ["leader": "\(host):\(port)", "offset": "\(position?.offset ?? -1)"])
        link.start()
    }

    // MARK: Commands

    func runReplicationCommand(_ command: Command, session: Session) throws -> RESPValue? {
        switch command {
        case .replicaOf(let host, let port):
            guard replication.reopenCatalog != nil else { return .err("REPLICAOF needs latentd (this executor cannot reopen its store)") }
            if let host, let link = replication.link, link.host == host, link.port == port {
                return .simpleString("OK Already connected to specified master")
            }
            try replicate(from: host, port: port)
            return .ok
        case .role:
            if let link = replication.link {
                let s = link.status
                return .array([.bulk("slave"), .bulk(link.host), .integer(link.port), .bulk(s.link), .integer(Int(s.position?.offset ?? -1))])
            }
            let leader = replication.leader
            return .array([.bulk("master"), .integer(Int(leader.offset)),
                           .array(leader.connectedReplicas.map { r in
                               .array([.bulk(Self.host(of: r.address)), .bulk(String(r.listeningPort)), .bulk(String(max(r.ackOffset, 0)))])
                           })])
        case .wait(let replicas, let timeout):
            // Here only inside MULTI or from tests: answered at once, as Redis does inside a transaction.
            // A connection's WAIT is answered by its handler without holding a thread (RESPServerHandler).
            _ = timeout
            return .integer(replication.isReplica ? 0 : min(replicas, replication.leader.acknowledged(session.lastWriteOffset)))
        case .replconf(let options):
            if options.count == 2, options[0].lowercased() == "listening-port", let port = Int(options[1]) {
                session.replicaListeningPort = port
            }
            return .ok
        case .psync:
            return .err("PSYNC is taken only as a connection's own request, outside MULTI")
        default:
            return nil
        }
    }

    static func host(of address: String) -> String {
        guard let colon = address.lastIndex(of: ":") else { return address }
        return String(address[..<colon])
    }

    /// INFO replication, with Redis' field names (clients and exporters read them).
    func replicationInfo() -> [(String, String)] {
        let leader = replication.leader
        if let link = replication.link {
            let s = link.status
            let lastIO = s.lastIO == 0 ? -1 : Int((DispatchTime.now().uptimeNanoseconds &- s.lastIO) / 1_000_000_000)
            return [("role", "slave"), ("master_host", link.host), ("master_port", String(link.port)),
                    ("master_link_status", s.link == "connected" ? "up" : "down"),
                    ("master_last_io_seconds_ago", String(lastIO)),
                    ("master_sync_in_progress", s.link == "sync" ? "1" : "0"),
                    ("master_sync_total_bytes", String(s.syncBytesTotal)), ("master_sync_read_bytes", String(s.syncBytesReceived)),
                    ("slave_read_repl_offset", String(s.position?.offset ?? -1)),
                    ("slave_repl_offset", String(s.position?.offset ?? -1)), ("slave_read_only", "1"),
                    ("replica_full_syncs", String(s.fullSyncs)), ("replica_partial_syncs", String(s.partialSyncs)),
                    ("replica_copy_bytes", String(s.copyBytes)), ("replica_stream_bytes", String(s.streamBytes)),
                    ("connected_slaves", "0"),
                    ("master_replid", s.position?.replicationId ?? ""), ("master_repl_offset", String(s.position?.offset ?? -1))]
        }
        let replicas = leader.connectedReplicas
        let now = DispatchTime.now().uptimeNanoseconds
        var fields: [(String, String)] = [("role", "master"), ("connected_slaves", String(replicas.count))]
        for (i, r) in replicas.enumerated() {
            let lag = (now &- r.lastAck) / 1_000_000_000
            fields.append(("slave\(i)", "ip=\(Self.host(of: r.address)),port=\(r.listeningPort),state=\(r.state),offset=\(max(r.ackOffset, 0)),lag=\(lag)"))
        }
        let backlog = leader.backlogInfo
        fields += [("min_slaves_good_slaves", String(leader.goodReplicas(maxLagSeconds: configuration.minReplicasMaxLagSeconds))),
                   ("master_replid", leader.replicationId), ("master_repl_offset", String(leader.offset)),
                   ("repl_backlog_active", "1"), ("repl_backlog_size", String(backlog.size)),
                   ("repl_backlog_first_byte_offset", String(backlog.firstByte)), ("repl_backlog_histlen", String(backlog.held))]
        return fields
    }
}
