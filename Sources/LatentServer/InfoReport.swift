import Atomics
import Foundation
import LatentEngine

/// The text INFO returns: `# Section` headers and `key:value` lines with Redis' section and field
/// names, so tools that read Redis' INFO (redis-cli, redis-py's test suite, exporters) read it too;
/// LatentDB's own figures follow in a `latentdb` section.
struct InfoReport {
    static var version: String { BuildInfo.version }
    /// The Redis release whose commands and replies latentd follows (clients gate features on it).
    static let redisVersion = "8.4.0"
    let executor: CommandExecutor

    /// `INFO` / `INFO default` print these, in this order (as Redis, whose default leaves out few).
    static let defaultSections = ["server", "clients", "memory", "persistence", "stats", "replication", "cpu",
                                  "cluster", "keyspace", "latentdb"]
    /// `INFO all` / `everything` add the per-command counters.
    static let allSections = defaultSections + ["commandstats", "latencystats"]
    /// Redis' default latency-tracking-info-percentiles.
    static let latencyPercentiles: [(label: String, value: Double)] = [("50", 50), ("99", 99), ("99.9", 99.9)]

    /// One or more section names (case-insensitive); unknown names are skipped, as Redis does.
    func render(sections requested: [String]) -> String {
        var wanted: [String] = []
        if requested.isEmpty { wanted = InfoReport.defaultSections }
        for s in requested.map({ $0.lowercased() }) {
            switch s {
            case "default": wanted += InfoReport.defaultSections
            case "all", "everything": wanted += InfoReport.allSections
            default: if InfoReport.allSections.contains(s) { wanted.append(s) }
            }
        }
        var seen = Set<String>()
        wanted = wanted.filter { seen.insert($0).inserted }
        return wanted.map { render($0) }.joined(separator: "\r\n")
    }

    private func render(_ section: String) -> String {
        let title: String
        switch section {
        case "cpu": title = "CPU"
        case "latentdb": title = "LatentDB"
        case "commandstats": title = "Commandstats"
        case "latencystats": title = "Latencystats"
        default: title = section.prefix(1).uppercased() + section.dropFirst()
        }
        return "# \(title)\r\n" + fields(section).map { "\($0.0):\($0.1)\r\n" }.joined()
    }

    private func fields(_ section: String) -> [(String, String)] {
        let config = executor.configuration
        let catalog = executor.catalog
        switch section {
        case "server":
            let uptime = Int(Date().timeIntervalSince(executor.stats.startTime))
            return [("redis_version", InfoReport.redisVersion), ("redis_mode", "standalone"), ("os", InfoReport.os),
                    ("arch_bits", String(MemoryLayout<Int>.size * 8)),
                    ("process_id", String(ProcessInfo.processInfo.processIdentifier)),
                    ("tcp_port", String(config.port)), ("uptime_in_seconds", String(uptime)),
                    ("uptime_in_days", String(uptime / 86_400)),
                    ("executable", CommandLine.arguments.first ?? ""),
                    ("config_file", executor.settings.configFile.map { URL(fileURLWithPath: $0).standardizedFileURL.path } ?? ""),
                    ("latentdb_version", InfoReport.version), ("latentdb_git_sha1", BuildInfo.gitCommit),
                    ("latentdb_build_date", BuildInfo.buildDate), ("rocksdb_version", BuildInfo.rocksDBVersion),
                    ("distance_kernels", BuildInfo.kernelPath), ("data_dir", config.dataDirectory)]
        case "clients":
            let buffers = executor.clients.all.map(\.buffers)
            return [("connected_clients", String(executor.stats.connectedClients)), ("maxclients", String(config.maxClients)),
                    ("client_recent_max_input_buffer", String(buffers.map(\.query).max() ?? 0)),
                    ("client_recent_max_output_buffer", String(buffers.map(\.output).max() ?? 0)),
                    ("blocked_clients", "0")]
        case "memory":
            let rocks = catalog.storageMemory
            let cacheBytes = executor.cache.snapshot().bytes
            let vectors = catalog.memoryBytes
            // used_memory: what latentd accounts for itself (collections, result cache, RocksDB's
            // memtables, table readers and block cache); RSS adds allocator overhead and code.
            let used = vectors + cacheBytes + Int(rocks.memtableBytes + rocks.tableReaderBytes + rocks.blockCacheBytes)
            let rss = InfoReport.residentBytes()
            return [("used_memory", String(used)), ("used_memory_human", InfoReport.human(used)),
                    ("used_memory_rss", String(rss)), ("used_memory_rss_human", InfoReport.human(rss)),
                    ("maxmemory", "0"), ("maxmemory_policy", "noeviction"),
                    ("used_memory_vectors", String(vectors)), ("used_memory_query_cache", String(cacheBytes)),
                    ("rocksdb_memtables", String(rocks.memtableBytes)), ("rocksdb_table_readers", String(rocks.tableReaderBytes)),
                    ("rocksdb_block_cache", String(rocks.blockCacheBytes)),
                    ("rocksdb_block_cache_pinned", String(rocks.blockCachePinnedBytes))]
        case "persistence":
            var lines = [("loading", "0"), ("rdb_bgsave_in_progress", "0"), ("aof_enabled", "0"),
                         ("fsync", catalog.fsync.rawValue), ("storage_engine", "rocksdb")]
            if let st = catalog.storageStatus {
                // As Redis' rdb_last_bgsave_status: whether writes can be persisted now, and why not.
                lines += [("storage_writes_ok", st.writesOK ? "1" : "0"), ("storage_read_only", st.readOnly ? "1" : "0"),
                          ("storage_write_stops", String(st.stops)), ("storage_resumes", String(st.resumes)),
                          ("storage_last_error", (st.lastError ?? "").replacingOccurrences(of: "\r", with: " ")
                            .replacingOccurrences(of: "\n", with: " "))]
            }
            return lines + executor.verification.infoFields
        case "stats":
            let s = executor.stats.snapshot()
            let c = executor.cache.snapshot()
            return [("total_connections_received", String(s.total)), ("total_commands_processed", String(s.commands)),
                    ("rejected_connections", String(s.rejected)), ("expired_keys", String(catalog.expiredCount)),
                    ("total_error_replies", String(s.errors)),
                    ("total_net_input_bytes", String(executor.stats.inputBytes.load(ordering: .relaxed))),
                    ("total_net_output_bytes", String(executor.stats.outputBytes.load(ordering: .relaxed))),
                    ("query_cache_enabled", executor.cache.isEnabled ? "1" : "0"), ("query_cache_hits", String(c.hits)),
                    ("query_cache_misses", String(c.misses)), ("query_cache_evictions", String(c.evictions)),
                    ("query_cache_bytes", String(c.bytes)), ("query_cache_entries", String(c.entries)),
                    ("query_cache_capacity_bytes", String(executor.cache.capacityBytes))]
        case "replication":
            return executor.replicationInfo()
        case "cpu":
            var usage = rusage()
            getrusage(RUSAGE_SELF.rawValue, &usage)
            func seconds(_ t: timeval) -> String { String(format: "%.6f", Double(t.tv_sec) + Double(t.tv_usec) / 1e6) }
            return [("used_cpu_sys", seconds(usage.ru_stime)), ("used_cpu_user", seconds(usage.ru_utime))]
        case "cluster":
            return executor.clusterInfo.withLockedValue { $0 }?() ?? [("cluster_enabled", "0")]
        case "keyspace":
            // As Redis: a line for db0 only when it holds keys.
            let all = catalog.all
            guard !all.isEmpty else { return [] }
            let expiring = all.filter { $0.expiresAt != nil }.count
            return [("db0", "keys=\(all.count),expires=\(expiring),avg_ttl=0,subexpiry=0")]
        case "latentdb":
            let all = catalog.all
            var lines = [("collections", String(all.count)), ("vectors", String(all.reduce(0) { $0 + $1.count }))]
            lines += all.sorted { $0.name < $1.name }.map {
                ("collection_\($0.name)", "size=\($0.count),dim=\($0.dimension),metric=\($0.metric.rawValue)")
            }
            return lines
        case "commandstats":
            // Redis 7's line: cmdstat_NAME:calls=,usec=,usec_per_call=,rejected_calls=,failed_calls=
            return executor.stats.commands.sorted { $0.key < $1.key }.map { name, s in
                let perCall = s.calls > 0 ? Double(s.microseconds) / Double(s.calls) : 0
                return ("cmdstat_\(name)", "calls=\(s.calls),usec=\(s.microseconds),usec_per_call="
                        + String(format: "%.2f", perCall) + ",rejected_calls=\(s.rejected),failed_calls=\(s.failed)")
            }
        case "latencystats":
            // Redis 7's line: latency_percentiles_usec_NAME:p50=,p99=,p99.9= (commands that ran at least once).
            return executor.stats.commands.sorted { $0.key < $1.key }.filter { $0.value.calls > 0 }.map { name, s in
                let ps = InfoReport.latencyPercentiles.map { p in
                    "p\(p.label)=" + String(format: "%.3f", Double(s.latency.valueAtPercentile(p.value)))
                }
                return ("latency_percentiles_usec_\(name)", ps.joined(separator: ","))
            }
        default:
            return []
        }
    }

    static let os: String = {
        var u = utsname()
        guard uname(&u) == 0 else { return "Linux" }
        func text<T>(_ field: T) -> String {
            withUnsafeBytes(of: field) { raw in String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self) }
        }
        return "\(text(u.sysname)) \(text(u.release)) \(text(u.machine))"
    }()

    /// Redis' human-readable sizes: 1.50M, 812.00K, 2.00G.
    static func human(_ bytes: Int) -> String {
        let units: [(Double, String)] = [(1_099_511_627_776, "T"), (1_073_741_824, "G"), (1_048_576, "M"), (1024, "K")]
        for (size, suffix) in units where Double(bytes) >= size {
            return String(format: "%.2f", Double(bytes) / size) + suffix
        }
        return "\(bytes)B"
    }

    /// Resident set size from /proc (Linux); 0 where that is not available.
    static func residentBytes() -> Int {
        guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = statm.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
