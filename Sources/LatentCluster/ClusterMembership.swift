import Foundation
import Logging

/// Where a cluster's state lives in etcd. Everything of cluster NAME is under `/latentdb/NAME/`:
/// `nodes/NODE-ID` holds a member's `ClusterNode` (JSON) under the member's lease, so it disappears by
/// itself when the node stops renewing (crash, pause, partition from etcd). docs/cluster.md.
public enum ClusterKeys {
    public static func root(_ cluster: String) -> String { "/latentdb/\(cluster)/" }
    public static func nodes(_ cluster: String) -> String { root(cluster) + "nodes/" }
    /// Node ids and cluster names are validated where they are configured (latentd's ConfigSchema).
    public static func node(_ cluster: String, _ id: String) -> String { nodes(cluster) + id }
}

/// What a member publishes about itself.
public struct ClusterNode: Codable, Sendable, Equatable {
    public var id: String
    /// HOST:PORT clients and other nodes reach its RESP port at.
    public var advertise: String
    public var startedAt: Int64
    public var version: String
    /// The replication stream offset it applied (or wrote, leading), as of its last renewal: elections
    /// pick the most advanced member.
    public var offset: Int64?

    public init(id: String, advertise: String, startedAt: Int64, version: String, offset: Int64? = nil) {
        self.id = id
        self.advertise = advertise
        self.startedAt = startedAt
        self.version = version
        self.offset = offset
    }
}

/// A node's membership: its key under a lease of `ttl` seconds, renewed every ttl/3 seconds on a
/// background queue; re-registered under a new lease if the old one was lost (etcd unreachable for longer
/// than the TTL); revoked at a clean stop so the node leaves at once. Also keeps the member list for INFO.
///
/// Threading: `queue` (serial) runs registration and renewals; `state` is guarded by `lock` (INFO reads it
/// from request threads).
public final class ClusterMembership: @unchecked Sendable {
    public struct State: Sendable {
        /// "joining", "member", "lost" (the last renewal failed; the key may be gone).
        public var status = "joining"
        public var lease: Int64 = 0
        public var members: [ClusterNode] = []
        public var lastError: String?
        public var renewals = 0
        public var registrations = 0
    }

    public let etcd: EtcdClient
    public let cluster: String
    public let node: ClusterNode
    public let ttl: Int
    private let logger: Logger
    private let queue = DispatchQueue(label: "latentdb.cluster.membership")
    private let lock = NSLock()
    private var stateValue = State()
    private var timer: DispatchSourceTimer?
    /// Set before `join` (then read only on `queue`): the failover controller run after each renewal.
    public var failover: ClusterFailover?

    public init(etcd: EtcdClient, cluster: String, node: ClusterNode, ttl: Int, logger: Logger) {
        self.etcd = etcd
        self.cluster = cluster
        self.node = node
        self.ttl = ttl
        self.logger = logger
    }

    public var state: State { lock.withLock { stateValue } }

    /// Registers this node (blocking). Fails when etcd cannot be reached, or when a live node already
    /// holds this node id.
    public func join() throws {
        try queue.sync { try register(first: true) }
        let timer = DispatchSource.makeTimerSource(queue: queue)
        let period = max(0.2, Double(ttl) / 3)
        timer.schedule(deadline: .now() + period, repeating: period, leeway: .milliseconds(50))
        // Strong capture, released by leave() (cancel + clearing the handler).
        timer.setEventHandler { self.renew() }
        timer.resume()
        self.timer = timer
    }

    /// Stops renewing and revokes the lease: the node's key goes at once.
    public func leave() {
        timer?.setEventHandler(handler: nil)
        timer?.cancel()
        timer = nil
        queue.sync {
            let lease = lock.withLock { stateValue.lease }
            guard lease != 0 else { return }
            do {
                try etcd.revoke(lease: lease)
            } catch {
                logger.warning("could not revoke the cluster lease; the node's key expires in \(ttl) s: \(error)")
            }
            lock.withLock {
                stateValue.lease = 0
                stateValue.status = "left"
            }
        }
    }

    private func register(first: Bool) throws {
        let lease = try etcd.grantLease(ttl: ttl)
        let key = ClusterKeys.node(cluster, node.id)
        let value = try published()
        if try !etcd.create(key, value, lease: lease) {
            if first {
                try? etcd.revoke(lease: lease)
                let holder = (try? etcd.get(key)).flatMap { $0 }.flatMap { try? JSONDecoder().decode(ClusterNode.self, from: Data($0.value)) }
                throw EtcdError(.refused, "node id '\(node.id)' is already a member of cluster '\(cluster)'"
                    + (holder.map { " (at \($0.advertise))" } ?? "") + ": give this node another --node-id, or wait up to "
                    + "\(ttl) s for a stopped node's lease to expire")
            }
            // Our own key under our lost lease is being replaced: take it over.
            try etcd.put(key, value, lease: lease)
        }
        let members = try listMembers()
        lock.withLock {
            stateValue.lease = lease
            stateValue.status = "member"
            stateValue.members = members
            stateValue.registrations += 1
            stateValue.lastError = nil
        }
        logger.notice("joined the cluster", metadata: ["cluster": "\(cluster)", "node": "\(node.id)", "lease": "\(lease)",
                                                       "members": "\(members.count)"])
        failover?.step()
    }

    /// This node's key value now: with its stream offset when a failover controller is attached.
    private func published() throws -> [UInt8] {
        var current = node
        current.offset = failover?.control.streamOffset
        return Array(try JSONEncoder().encode(current))
    }

    private func renew() {
        let lease = lock.withLock { stateValue.lease }
        do {
            let remaining = lease == 0 ? 0 : try etcd.keepAlive(lease: lease)
            if remaining == 0 {
                logger.warning("cluster lease lost; registering again", metadata: ["node": "\(node.id)"])
                try register(first: false)
                return
            }
            if failover != nil { try etcd.put(ClusterKeys.node(cluster, node.id), try published(), lease: lease) }
            let members = try listMembers()
            lock.withLock {
                stateValue.status = "member"
                stateValue.renewals += 1
                stateValue.members = members
                stateValue.lastError = nil
            }
            failover?.step()
        } catch {
            lock.withLock {
                stateValue.status = "lost"
                stateValue.lastError = "\(error)"
            }
            logger.error("cluster lease renewal failed: \(error)", metadata: ["node": "\(node.id)"])
        }
    }

    public func listMembers() throws -> [ClusterNode] {
        try etcd.list(prefix: ClusterKeys.nodes(cluster)).compactMap { try? JSONDecoder().decode(ClusterNode.self, from: Data($0.value)) }
    }

    /// INFO's cluster section.
    public func info() -> [(String, String)] {
        let s = state
        var fields: [(String, String)] = [
            ("cluster_enabled", "1"), ("cluster_name", cluster), ("cluster_node_id", node.id), ("cluster_advertise", node.advertise),
            ("cluster_etcd_endpoints", etcd.endpoints.map(\.absoluteString).joined(separator: ",")),
            ("cluster_membership", s.status), ("cluster_lease_ttl", String(ttl)), ("cluster_known_nodes", String(s.members.count)),
            ("cluster_lease_registrations", String(s.registrations)),
        ]
        for (i, m) in s.members.enumerated() {
            fields.append(("node\(i)", "id=\(m.id),addr=\(m.advertise),version=\(m.version),offset=\(m.offset.map(String.init) ?? "-")"))
        }
        if let failover { fields += failover.info() }
        if let e = s.lastError { fields.append(("cluster_last_error", e)) }
        return fields
    }
}
