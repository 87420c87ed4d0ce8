import LatentProtocol
import LatentStorage
import Logging
import NIOCore

/// Everything `latentd`'s flags and configuration file decide. `ConfigSchema` lists each setting with
/// its directive and flag names, its validation, and whether CONFIG SET may change it at runtime.
public struct ServerConfiguration: Sendable, Equatable {
    public var host = "127.0.0.1"
    public var port = 7379
    public var dataDirectory = "./data"
    /// When set, every connection must AUTH before anything but AUTH, HELLO and QUIT.
    public var password: String?
    public var fsync: FsyncPolicy = .everysec
    public var maxClients = 10_000
    /// Bytes of VSIM replies kept for repeated queries; 0 turns the cache off.
    public var queryCacheBytes = 64 << 20
    /// Free disk space below which writes are refused (min-free-disk; 0 turns the guard off).
    public var minFreeDiskBytes = 256 << 20
    /// Open a store whose WAL is damaged before its end, dropping the writes after the damage.
    public var recoverTruncate = false
    public var limits = RESPDecoderLimits()
    /// Threads that run requests off the event loops (searches, writes).
    public var workerThreads = System.coreCount
    public var eventLoopThreads = System.coreCount
    /// Close a connection after this many seconds without a request (Redis' `timeout`); 0 = never.
    public var idleTimeoutSeconds = 0
    public var logLevel: Logger.Level = .info
    /// Most bytes of received, not yet run requests one client may have (Redis' client-query-buffer-limit).
    public var queryBufferLimit = 1 << 30
    /// Commands that run at least this many microseconds go to SLOWLOG (negative: none; 0: all).
    public var slowlogSlowerThanMicroseconds = 10_000
    /// Port of the Prometheus /metrics endpoint (-1: none; 0: any free port).
    public var metricsPort = -1
    /// Most SLOWLOG entries kept.
    public var slowlogMaxLength = 128
    /// Follow this leader ("host port"); nil: lead.
    public var replicaOf: (host: String, port: Int)?
    /// The password a replica sends its leader (AUTH) before asking for the stream (masterauth).
    public var leaderPassword: String?
    /// Refuse writes (NOREPLICAS) unless this many replicas acknowledged within `minReplicasMaxLagSeconds`,
    /// and hold a write's reply until that many acknowledged it (0: off).
    public var minReplicasToWrite = 0
    public var minReplicasMaxLagSeconds = 10
    /// Bytes of the replication stream kept for replicas that reconnect (repl-backlog-size).
    public var replBacklogBytes = 64 << 20
    /// etcd endpoints of the cluster to join (comma-separated URLs); nil: a single node (docs/cluster.md).
    public var clusterEndpoints: String?
    /// This node's id in the cluster (default: HOSTNAME-PORT) and the HOST:PORT others reach it at
    /// (default: the bind address and port).
    public var nodeId: String?
    public var advertise: String?
    public var clusterName = "latentdb"
    /// Seconds a node's etcd lease lives without renewal (it renews every third of it).
    public var clusterLeaseTTL = 10
    /// Redis' client-output-buffer-limit for normal clients: 0 means no limit.
    public var outputBufferLimit = OutputBufferLimit()

    public struct OutputBufferLimit: Sendable, Equatable {
        /// Disconnect at once above this many bytes of unsent replies.
        public var hard = 0
        /// Disconnect when above this many bytes for `softSeconds` in a row.
        public var soft = 0
        public var softSeconds = 0
        public init(hard: Int = 0, soft: Int = 0, softSeconds: Int = 0) {
            self.hard = hard
            self.soft = soft
            self.softSeconds = softSeconds
        }
    }

    public init() {}

    public static func == (a: ServerConfiguration, b: ServerConfiguration) -> Bool {
        ConfigSchema.directives.allSatisfy { $0.get(a) == $0.get(b) }
    }
}
