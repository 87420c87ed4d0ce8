import Foundation
import Logging

/// What the failover controller needs of the server it runs in (latentd adapts its executor to it), so
/// the cluster module stays above the server and knows nothing of its types.
public protocol ReplicationControl: AnyObject, Sendable {
    /// Whether this server leads (not following anyone).
    var isLeader: Bool { get }
    /// The leader this server follows ("host:port"), nil when leading.
    var following: String? { get }
    /// The stream offset this server has applied (a replica) or written (a leader).
    var streamOffset: Int64 { get }
    /// Stop following and lead, keeping everything applied (REPLICAOF NO ONE).
    func lead() throws
    /// Follow the leader at `host:port` (REPLICAOF host port).
    func follow(host: String, port: Int) throws
}

/// Automatic failover of one replicated group (every member holds the whole store): one leader, the others
/// its replicas, the leader chosen through etcd. docs/cluster.md, "Failover".
///
/// - The leader key `/latentdb/NAME/leader` names the leader and lives under the leader's membership
///   lease, so it goes when the leader stops renewing (crash, freeze, partition from etcd).
/// - Every member publishes its stream offset in its node key at each renewal. When the leader key is
///   missing, every member publishes its offset at once, waits one renewal period (replicas stop applying
///   when their leader is gone, so the offsets are then final) and the member with the highest offset (ties:
///   the lowest id) creates the leader key, in a transaction that fails if someone else did, and leads.
///   The others follow whoever holds the key.
/// - Fencing: a leader refuses writes once its last successful renewal is older than two thirds of the
///   TTL (`writeRefusal`): before its lease can expire and another member can be elected, so two leaders
///   never both take writes. A frozen leader that wakes up is refused at once (its last renewal is old).
///
/// Threading: `step` runs on the membership's queue; `lastRenewal` is guarded by `lock` (the fencing check
/// reads it on request threads).
public final class ClusterFailover: @unchecked Sendable {
    public let membership: ClusterMembership
    let control: ReplicationControl
    private let logger: Logger
    private let lock = NSLock()
    /// When leadership was last confirmed; 0 (never) fences a node that has not been elected yet, so a
    /// node that just joined takes no writes before it knows whether it leads.
    private var lastRenewal: UInt64 = 0
    private var electionSince: UInt64?
    private var elections = 0

    public init(membership: ClusterMembership, control: ReplicationControl, logger: Logger) {
        self.membership = membership
        self.control = control
        self.logger = logger
    }

    public var leaderKey: String { ClusterKeys.root(membership.cluster) + "leader" }

    /// This node's leadership was confirmed (its lease renewed, the leader key its own under that lease).
    private func confirmed(at time: UInt64) { lock.withLock { lastRenewal = time } }

    /// The error a write gets while this node may no longer be the leader (nil: writes are fine).
    public func writeRefusal() -> String? {
        guard control.isLeader else { return nil }
        let age = lock.withLock { DispatchTime.now().uptimeNanoseconds &- lastRenewal }
        let limit = UInt64(membership.ttl) * 2_000_000_000 / 3
        guard age > limit else { return nil }
        return "CLUSTERDOWN this node could not renew its cluster lease for \(age / 1_000_000) ms; it takes no writes "
            + "until it knows whether it still leads (another node may have been elected)"
    }

    /// One round, right after a successful renewal: follow the leader, lead, or elect one.
    func step() {
        let me = membership.node
        let start = DispatchTime.now().uptimeNanoseconds
        do {
            if let current = try membership.etcd.get(leaderKey),
               let leader = try? JSONDecoder().decode(ClusterNode.self, from: Data(current.value)) {
                electionSince = nil
                if leader.id == me.id {
                    if current.lease != membership.state.lease {
                        // Our key from a lease we lost: leave it to expire, and do not lead on it.
                        return
                    }
                    if !control.isLeader { try control.lead() }
                    confirmed(at: start)
                    return
                }
                if control.following != leader.advertise {
                    let parts = leader.advertise.split(separator: ":")
                    guard parts.count == 2, let port = Int(parts[1]) else { return }
                    logger.notice("following the cluster's leader", metadata: ["leader": "\(leader.id)", "at": "\(leader.advertise)"])
                    try control.follow(host: String(parts[0]), port: port)
                }
                return
            }
            // No leader: publish the final offset, give the others one round to do the same, then the most
            // advanced member campaigns.
            let now = start
            guard let since = electionSince else {
                electionSince = now
                return
            }
            guard now &- since >= UInt64(max(0.2, Double(membership.ttl) / 3) * 1e9) else { return }
            let members = try membership.listMembers()
            let best = members.max { a, b in
                (a.offset ?? -1, b.id) < (b.offset ?? -1, a.id)
            }
            guard best?.id == me.id else { return }
            let lease = membership.state.lease
            guard lease != 0 else { return }
            if try membership.etcd.create(leaderKey, Array(try JSONEncoder().encode(me)), lease: lease) {
                lock.withLock { elections += 1 }
                logger.notice("elected leader of the cluster", metadata: ["offset": "\(control.streamOffset)"])
                try control.lead()
                confirmed(at: now)
                electionSince = nil
            }
        } catch {
            logger.error("cluster failover step failed: \(error)")
        }
    }

    public func info() -> [(String, String)] {
        let leader = (try? membership.etcd.get(leaderKey)).flatMap { $0 }
            .flatMap { try? JSONDecoder().decode(ClusterNode.self, from: Data($0.value)) }
        return [("cluster_leader", leader?.id ?? ""), ("cluster_leader_addr", leader?.advertise ?? ""),
                ("cluster_role", control.isLeader ? "leader" : "replica"),
                ("cluster_elections_won", String(lock.withLock { elections })),
                ("cluster_fenced", writeRefusal() == nil ? "0" : "1")]
    }
}
