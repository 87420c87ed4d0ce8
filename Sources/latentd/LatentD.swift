import ArgumentParser
import Foundation
import LatentCluster
import LatentEngine
import LatentProtocol
import LatentServer
import LatentStorage
import LatentVectors
import Logging
import Metrics
import Prometheus

@main
struct LatentD: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "latentd",
        abstract: "LatentDB server: vector collections over a RESP (Redis-compatible) protocol, stored in RocksDB.",
        discussion: """
        Settings come from the defaults, then the --config file, then the flags (flags win). Every flag is \
        also a configuration directive; see tools/latentd.conf for the file format and each directive.
        """,
        version: BuildInfo.versionText(program: "latentd"))

    @Option(help: "Configuration file in redis.conf format (directive value lines, # comments, include).")
    var config: String?

    // Values are kept as text and validated by ConfigSchema, so a flag, a file line and CONFIG SET
    // accept exactly the same values.
    @Option(help: "Address to listen on (default 127.0.0.1).") var bind: String?
    @Option(help: "TCP port to listen on, 0 picks a free one (default 7379).") var port: String?
    @Option(help: "Directory of the RocksDB store, created when missing (default ./data).") var dataDir: String?
    @Option(help: "Require AUTH with this password (default: $LATENTD_PASSWORD, or none).") var requirepass: String?
    @Option(help: "When the write-ahead log is synced: always (before each reply), everysec (default), no.") var fsync: String?
    @Option(help: "Most concurrent client connections (default 10000).") var maxClients: String?
    @Option(help: "MiB of VSIM replies cached for repeated queries, 0 turns the cache off (default 64).") var queryCacheMb: String?
    @Option(help: "Largest bulk string in a request, in bytes (default 536870912).") var protoMaxBulkLen: String?
    @Option(help: "Close a client connection after this many seconds without a request, 0 = never (default 0).") var timeout: String?
    @Option(help: "trace, debug, info (default), notice, warning, error or critical.") var logLevel: String?
    @Option(help: "Most bytes of received, not yet run requests per client, e.g. 512mb (default 1gb).") var clientQueryBufferLimit: String?
    @Option(help: "\"normal HARD SOFT SECONDS\": disconnect a client whose unsent replies exceed HARD bytes, or SOFT for SECONDS (default \"normal 0 0 0\": no limit).")
    var clientOutputBufferLimit: String?
    @Option(help: "Log commands that run at least this many microseconds to SLOWLOG; 0 logs all, -1 none (default 10000).")
    var slowlogLogSlowerThan: String?
    @Option(help: "Most SLOWLOG entries kept (default 128).") var slowlogMaxLen: String?
    @Option(help: "Serve Prometheus metrics at http://BIND:PORT/metrics; 0 picks a free port (default: off).") var metricsPort: String?
    @Option(help: "Refuse writes (MISCONF) while the data directory's disk has less free space than this, e.g. 512mb (default 256mb; 0 = no guard).")
    var minFreeDisk: String?
    @Option(help: "Follow the leader at \"HOST PORT\" as a read-only replica (default: lead).") var replicaof: String?
    @Option(help: "Password a replica sends its leader with AUTH (the leader's requirepass).") var masterauth: String?
    @Option(help: "Take writes only with this many replicas acknowledging within --min-replicas-max-lag seconds, and answer each once that many have it (default 0: off).")
    var minReplicasToWrite: String?
    @Option(help: "Seconds a replica may go without acknowledging and still count (default 10).") var minReplicasMaxLag: String?
    @Option(help: "Bytes of replication stream kept for replicas that reconnect, e.g. 256mb (default 64mb).") var replBacklogSize: String?
    @Option(help: "Join the cluster whose etcd endpoints these are (comma-separated URLs; default: a single node).") var cluster: String?
    @Option(help: "This node's id in the cluster (default: HOSTNAME-PORT).") var nodeId: String?
    @Option(help: "HOST:PORT other nodes and clients reach this node at (default: the bind address and port).") var advertise: String?
    @Option(help: "Cluster name: its etcd keys are under /latentdb/NAME/ (default latentdb).") var clusterName: String?
    @Option(help: "Seconds a node stays a member without renewing its etcd lease (default 10).") var clusterLeaseTtl: String?
    @Flag(help: "Open a store whose write-ahead log is damaged before its end, dropping every write after the damage (the log says how many). Without it latentd refuses to start.")
    var recoverTruncate = false

    /// The effective configuration: defaults < file < flags < $LATENTD_PASSWORD when no password was set.
    func effectiveConfiguration() throws -> ServerConfiguration {
        var c = ServerConfiguration()
        if let config { try ConfigFile.apply(path: config, to: &c) }
        let flags: [(String, String?)] = [("bind", bind), ("port", port), ("data-dir", dataDir), ("requirepass", requirepass),
                                          ("fsync", fsync), ("max-clients", maxClients), ("query-cache-mb", queryCacheMb),
                                          ("proto-max-bulk-len", protoMaxBulkLen), ("timeout", timeout), ("log-level", logLevel),
                                          ("client-query-buffer-limit", clientQueryBufferLimit),
                                          ("client-output-buffer-limit", clientOutputBufferLimit), ("min-free-disk", minFreeDisk),
                                          ("slowlog-log-slower-than", slowlogLogSlowerThan), ("slowlog-max-len", slowlogMaxLen),
                                          ("metrics-port", metricsPort), ("replicaof", replicaof), ("masterauth", masterauth),
                                          ("min-replicas-to-write", minReplicasToWrite), ("min-replicas-max-lag", minReplicasMaxLag),
                                          ("repl-backlog-size", replBacklogSize), ("cluster", cluster), ("node-id", nodeId),
                                          ("advertise", advertise), ("cluster-name", clusterName),
                                          ("cluster-lease-ttl", clusterLeaseTtl),
                                          ("recover-truncate", recoverTruncate ? "yes" : nil)]
        for (flag, value) in flags {
            guard let value else { continue }
            guard let directive = ConfigSchema.directive(flag) else { continue }
            do {
                try directive.set(&c, value)
            } catch let e as ConfigValueError {
                throw ValidationError("--\(flag): \(e.description)")
            }
        }
        if c.password == nil, let env = ProcessInfo.processInfo.environment["LATENTD_PASSWORD"], !env.isEmpty {
            c.password = env
        }
        return c
    }

    func run() throws {
        let config: ServerConfiguration
        do {
            config = try effectiveConfiguration()
        } catch let e as ConfigFileError {
            fail("latentd: \(e)")
        }
        let level = LogLevelBox(config.logLevel)
        LoggingSystem.bootstrap { label in RuntimeLevelLogHandler(label: label, level: level) }
        let logger = Logger(label: "latentd")
        // A pinned kernel level the CPU cannot run would be SIGILL at the first query: refuse instead.
        if let problem = DistanceKernels.selectionProblem { fail("latentd: \(problem)") }
        // One line with the effective configuration (every directive; the password only as set or not).
        var effective: Logger.Metadata = ["distance-kernels": .string(DistanceKernels.codePath)]
        for directive in ConfigSchema.directives {
            let secret = directive.name == "requirepass" || directive.name == "masterauth"
            effective[directive.name] = .string(secret ? (directive.get(config).isEmpty ? "(none)" : "(set)") : directive.get(config))
        }
        logger.info("latentd starting", metadata: effective)
        let settings = RuntimeConfiguration(config, configFile: self.config)
        settings.observe { level.level = $0.logLevel }

        let catalog: CollectionCatalog
        // A replica opens its store again after installing a copy from its leader: the same options.
        let openCatalog: @Sendable () throws -> CollectionCatalog = {
            try CollectionCatalog(directory: config.dataDirectory, fsync: config.fsync,
                                  storage: StoreOptions(minFreeDiskBytes: UInt64(config.minFreeDiskBytes),
                                                        recoverTruncate: config.recoverTruncate), logger: logger)
        }
        do {
            catalog = try openCatalog()
        } catch {
            fail("latentd: cannot open data directory \(config.dataDirectory): \(error)")
        }
        // With --metrics-port, one registry serves /metrics and is swift-metrics' backend, so what any
        // library emits through swift-metrics is exposed beside latentd's own series.
        let registry = PrometheusCollectorRegistry()
        if config.metricsPort >= 0 { MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry)) }
        let server = LatentServer(settings: settings, catalog: catalog, logger: logger, metricsRegistry: registry)
        server.executor.replication.reopenCatalog = openCatalog
        // Signal handling is armed before "ready" is printed: a SIGTERM sent as soon as a supervisor or test
        // sees "ready" used to arrive between SIG_IGN and the source's arming and was lost (shutdown hung).
        var sources: [DispatchSourceSignal] = []
        for sig in [SIGTERM, SIGINT] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { server.requestShutdown() }
            source.resume()
            sources.append(source)
        }
        do {
            try server.start()
        } catch {
            catalog.close()
            fail("latentd: \(error)")
        }
        // Cluster membership (docs/cluster.md): once the port is bound, so the advertised address is known.
        var membership: ClusterMembership?
        if let endpoints = config.clusterEndpoints {
            let port = server.boundPort ?? config.port
            let node = ClusterNode(id: config.nodeId ?? "\(ProcessInfo.processInfo.hostName)-\(port)",
                                   advertise: config.advertise ?? "\(config.host):\(port)",
                                   startedAt: Int64(Date().timeIntervalSince1970), version: BuildInfo.version)
            do {
                let clusterLogger = Logger(label: "latentd.cluster")
                let m = ClusterMembership(etcd: try EtcdClient(endpoints: endpoints), cluster: config.clusterName, node: node,
                                          ttl: config.clusterLeaseTTL, logger: clusterLogger)
                // One replicated group with automatic failover: the members elect a leader in etcd and the
                // others follow it (docs/cluster.md, "Failover").
                let failover = ClusterFailover(membership: m, control: ExecutorReplicationControl(server.executor),
                                               logger: clusterLogger)
                m.failover = failover
                server.executor.clusterWriteRefusal.withLockedValue { $0 = { failover.writeRefusal() } }
                try m.join()
                server.executor.clusterInfo.withLockedValue { $0 = { m.info() } }
                membership = m
            } catch {
                server.requestShutdown()
                server.runUntilShutdown()
                server.executor.catalog.close()
                fail("latentd: cannot join the cluster: \(error)")
            }
        }
        // Announce the bound port on stdout so scripts and tests can use --port 0 (after joining a cluster).
        print("latentd ready on \(config.host):\(server.boundPort ?? config.port)")
        if let metricsPort = server.boundMetricsPort { print("latentd metrics on http://\(config.host):\(metricsPort)/metrics") }
        fflush(stdout)

        server.runUntilShutdown()
        membership?.leave()  // the node's key goes now, not when its lease runs out
        server.executor.verification.cancelAndWait() // no VERIFY thread inside RocksDB past this point
        server.executor.catalog.close() // a replica may have replaced the catalog it started with
        logger.info("latentd stopped; store closed")
        _ = sources
    }

    func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data((message + "\n").utf8))
        Foundation.exit(1)
    }
}

/// The log level every handler reads; CONFIG SET loglevel changes it. Guarded by `lock`.
final class LogLevelBox: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Logger.Level
    init(_ level: Logger.Level) { value = level }
    var level: Logger.Level {
        get { lock.withLock { value } }
        set { lock.withLock { value = newValue } }
    }
}

/// Standard error lines (what systemd's journal collects) at the level in `LogLevelBox`.
struct RuntimeLevelLogHandler: LogHandler {
    private var inner: StreamLogHandler
    private let box: LogLevelBox

    init(label: String, level: LogLevelBox) {
        inner = StreamLogHandler.standardError(label: label)
        inner.logLevel = .trace // filtering is done here, by the shared level
        box = level
    }

    var logLevel: Logger.Level {
        get { box.level }
        set { box.level = newValue }
    }

    var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: key] = newValue }
    }

    func log(event: LogEvent) {
        inner.log(event: event)
    }
}

/// The server's replication, as the cluster's failover controller drives it.
final class ExecutorReplicationControl: ReplicationControl, @unchecked Sendable {
    /// Immutable; the executor guards its own state.
    let executor: CommandExecutor
    init(_ executor: CommandExecutor) { self.executor = executor }

    var isLeader: Bool { !executor.replication.isReplica }
    var following: String? { executor.replication.link.map { "\($0.host):\($0.port)" } }
    var streamOffset: Int64 {
        if let link = executor.replication.link { return link.status.position?.offset ?? -1 }
        return executor.replication.leader.offset
    }
    func lead() throws { try executor.replicate(from: nil, port: 0) }
    func follow(host: String, port: Int) throws { try executor.replicate(from: host, port: port) }
}
