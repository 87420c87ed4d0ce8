import Atomics
import Foundation
import LatentEngine
import LatentStorage
import NIOConcurrencyHelpers
import Prometheus

/// latentd's Prometheus series, kept in a swift-prometheus registry (which latentd also installs as the
/// swift-metrics backend, so anything a library emits through swift-metrics lands on /metrics too).
/// latentd's own series are made on the registry directly, each with its HELP text: swift-metrics has no
/// help, `promtool check metrics` reports series without one, and swift-prometheus stops the process
/// when one name is registered with two different help texts, so every name is made here and only here.
///
/// Per-command counters and latency histograms are updated as commands run (`record`); everything else
/// is read when Prometheus scrapes (`refresh`): connected clients, bytes in and out, memory per
/// collection, index state, pending tail, result cache, RocksDB figures and the replication role.
/// Guarding: `registry` is thread-safe itself; `state` (the gauges made per collection and the last
/// counter readings turned into increments) is a NIOLockedValueBox.
public final class ServerMetrics: @unchecked Sendable {
    public let registry: PrometheusCollectorRegistry

    /// Seconds: 50 us to 10 s.
    static let latencyBuckets: [Duration] = [.microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500),
                                             .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
                                             .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
                                             .milliseconds(500), .seconds(1), .seconds(2), .seconds(5), .seconds(10)]

    /// latentd_NAME_UNIT with its help text.
    static func name(_ name: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "latentd", metricName: name, unitName: unit, helpText: help)
    }
    static let commands = name("commands", "total", "Commands run, by command (RESP name, lower case).")
    static let commandErrors = name("command_errors", "total",
                                    "Commands that replied with an error (failed while running or refused before it).")
    static let commandDuration = name("command_duration", "seconds",
                                      "Execution time of each command on its worker thread, excluding socket I/O.")

    private struct State {
        var collectionGauges: [String: [Gauge]] = [:]
        var lastCounters: [String: Int] = [:]
    }
    private let state = NIOLockedValueBox(State())

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
    }

    func record(_ runs: [ServerStats.Run]) {
        for run in runs {
            let labels = [("command", run.name)]
            registry.makeCounter(descriptor: Self.commands, labels: labels).increment()
            if run.failed || run.rejected { registry.makeCounter(descriptor: Self.commandErrors, labels: labels).increment() }
            registry.makeDurationHistogram(descriptor: Self.commandDuration, labels: labels, buckets: Self.latencyBuckets)
                .record(.microseconds(Int64(clamping: run.microseconds)))
        }
    }

    /// Adds to counter `name` what its source counted since the last scrape (a source that restarted
    /// from zero, e.g. after CONFIG RESETSTAT, counts from zero again).
    private func advance(_ name: String, help: String, to value: Int, labels: [(String, String)] = []) {
        let key = name + labels.map { "|\($0.1)" }.joined()
        let delta: Int = state.withLockedValue {
            let last = $0.lastCounters[key] ?? 0
            $0.lastCounters[key] = value
            return value >= last ? value - last : value
        }
        let descriptor = MetricNameDescriptor(metricName: String(name.dropLast("_total".count)), unitName: "total", helpText: help)
        let counter = labels.isEmpty ? registry.makeCounter(descriptor: descriptor)
                                     : registry.makeCounter(descriptor: descriptor, labels: labels)
        if delta > 0 { counter.increment(by: Int64(delta)) }
    }

    private func gauge(_ name: String, _ help: String, _ value: Double, labels: [(String, String)] = []) -> Gauge {
        // The unit is part of `name` (latentd_..._bytes); the descriptor's unit stays empty.
        let descriptor = MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
        let g = labels.isEmpty ? registry.makeGauge(descriptor: descriptor) : registry.makeGauge(descriptor: descriptor, labels: labels)
        g.set(value)
        return g
    }

    /// Reads the current figures into the registry; called before each exposition.
    func refresh(executor: CommandExecutor) {
        let stats = executor.stats
        _ = gauge("latentd_connected_clients", "Client connections open now.", Double(stats.connectedClients))
        let s = stats.snapshot()
        advance("latentd_connections_received_total", help: "Client connections accepted since start (or CONFIG RESETSTAT).", to: s.total)
        advance("latentd_rejected_connections_total", help: "Connections refused at maxclients.", to: s.rejected)
        advance("latentd_net_input_bytes_total", help: "Request bytes received (arguments; RESP framing not counted).",
                to: stats.inputBytes.load(ordering: .relaxed))
        advance("latentd_net_output_bytes_total", help: "Reply bytes sent.", to: stats.outputBytes.load(ordering: .relaxed))
        let cache = executor.cache.snapshot()
        advance("latentd_query_cache_hits_total", help: "VSIM replies served from the result cache.", to: cache.hits)
        advance("latentd_query_cache_misses_total", help: "VSIM requests the result cache could not answer.", to: cache.misses)
        advance("latentd_query_cache_evictions_total", help: "Result-cache entries evicted for space.", to: cache.evictions)
        _ = gauge("latentd_query_cache_bytes", "Bytes of replies held by the result cache.", Double(cache.bytes))
        _ = gauge("latentd_query_cache_entries", "Replies held by the result cache.", Double(cache.entries))
        refreshReplication(executor.replication)

        let catalog = executor.catalog
        let db = catalog.store.db
        var sst = 0.0, pendingCompaction = 0.0
        for cf in StoreLayout.columnFamilies {
            sst += Double(db.sstBytes(cf))
            pendingCompaction += Double(db.pendingCompactionBytes(cf))
        }
        _ = gauge("latentd_rocksdb_sst_bytes", "Bytes of RocksDB's SST files, all column families.", sst)
        _ = gauge("latentd_rocksdb_pending_compaction_bytes", "RocksDB's estimate of bytes compaction still has to rewrite.",
                  pendingCompaction)
        _ = gauge("latentd_rocksdb_wal_bytes", "Bytes of RocksDB's write-ahead log files.", Double(walBytes(catalog.store.directory)))
        let memory = db.memoryUsage
        _ = gauge("latentd_rocksdb_memtable_bytes", "Bytes in RocksDB memtables.", Double(memory.memtableBytes))
        _ = gauge("latentd_rocksdb_block_cache_bytes", "Bytes in RocksDB's block cache.", Double(memory.blockCacheBytes))

        var made: [String: [Gauge]] = [:]
        for collection in catalog.all {
            let info = collection.info()
            let c = [("collection", info.name)]
            var gauges = [
                gauge("latentd_collection_elements", "Elements in the collection.", Double(info.size), labels: c),
                gauge("latentd_collection_pending", "Elements written but not yet in the index (searched exactly).", Double(info.pending), labels: c),
                gauge("latentd_collection_indexed", "Elements the serving index answers for.", Double(info.indexed), labels: c),
                gauge("latentd_collection_index_ready", "1 when the index serves (FLAT always), 0 while building or untrained.",
                      info.state == .ready || info.state == .none ? 1 : 0, labels: c),
            ]
            var progress = 1.0
            if case .building(let p) = info.state { progress = p }
            gauges.append(gauge("latentd_collection_index_build_progress", "Progress of a running index build, 0 to 1 (1 when none runs).",
                                progress, labels: c))
            let parts: [(String, Int)] = [("vectors", info.vectorBytes), ("index", info.indexBytes), ("attributes", info.attributeBytes),
                                          ("seen_lists", info.seenListBytes), ("seen_slot_cache", info.seenSlotCacheBytes),
                                          ("total", info.memoryBytes)]
            for (part, bytes) in parts {
                gauges.append(gauge("latentd_collection_memory_bytes", "Memory of a collection by part (total includes the id maps).",
                                    Double(bytes), labels: c + [("part", part)]))
            }
            made[info.name] = gauges
        }
        // A dropped or renamed collection's series end with it.
        let gone: [Gauge] = state.withLockedValue { s in
            defer { s.collectionGauges = made }
            return s.collectionGauges.filter { made[$0.key] == nil }.flatMap(\.value)
        }
        for g in gone { registry.unregisterGauge(g) }
    }

    /// Role, stream offsets, replicas and their lag (leader), link state and syncs (replica).
    private func refreshReplication(_ replication: ReplicationController) {
        let link = replication.link
        _ = gauge("latentd_replication_role", "1 for the role this server has now, 0 for the other.", link == nil ? 1 : 0,
                  labels: [("role", "master")])
        _ = gauge("latentd_replication_role", "1 for the role this server has now, 0 for the other.", link == nil ? 0 : 1,
                  labels: [("role", "replica")])
        let leader = replication.leader
        if let link {
            let s = link.status
            _ = gauge("latentd_replication_offset_bytes", "Replication stream offset: written (leader) or applied (replica).",
                      Double(s.position?.offset ?? 0))
            _ = gauge("latentd_replication_link_up", "1 while a replica's link to its leader streams.", s.link == "connected" ? 1 : 0)
            let ago = s.lastIO == 0 ? -1 : Double(DispatchTime.now().uptimeNanoseconds &- s.lastIO) / 1e9
            _ = gauge("latentd_replication_last_io_seconds", "Seconds since a replica last heard from its leader (-1: never).", ago)
            advance("latentd_replication_full_syncs_total", help: "Full copies this replica took from its leader.", to: s.fullSyncs)
            advance("latentd_replication_partial_syncs_total", help: "Times this replica resumed the stream without a copy.", to: s.partialSyncs)
            advance("latentd_replication_received_bytes_total", help: "Bytes a replica received: copies and stream.",
                    to: Int(clamping: s.copyBytes + s.streamBytes))
            return
        }
        let offset = leader.offset
        let replicas = leader.connectedReplicas
        let now = DispatchTime.now().uptimeNanoseconds
        _ = gauge("latentd_replication_offset_bytes", "Replication stream offset: written (leader) or applied (replica).", Double(offset))
        _ = gauge("latentd_replication_connected_replicas", "Replicas connected to this leader.", Double(replicas.count))
        _ = gauge("latentd_replication_online_replicas", "Replicas streaming (their copy done).",
                  Double(replicas.filter { $0.state == "online" }.count))
        _ = gauge("latentd_replication_max_lag_bytes", "Stream bytes the furthest-behind replica has not acknowledged.",
                  Double(replicas.map { offset - max($0.ackOffset, 0) }.max() ?? 0))
        _ = gauge("latentd_replication_max_lag_seconds", "Seconds since the least recent acknowledgement of a replica.",
                  Double(replicas.map { now &- $0.lastAck }.max() ?? 0) / 1e9)
        let backlog = leader.backlogInfo
        _ = gauge("latentd_replication_backlog_bytes", "Stream bytes the backlog holds for replicas that reconnect.", Double(backlog.held))
    }

    private func walBytes(_ directory: String) -> Int {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return files.filter { $0.hasSuffix(".log") }.reduce(0) { total, name in
            let size = (try? FileManager.default.attributesOfItem(atPath: directory + "/" + name)[.size] as? Int) ?? 0
            return total + (size ?? 0)
        }
    }

    /// The text exposition format Prometheus scrapes.
    public func exposition(executor: CommandExecutor) -> [UInt8] {
        refresh(executor: executor)
        return registry.emitToBuffer()
    }
}
