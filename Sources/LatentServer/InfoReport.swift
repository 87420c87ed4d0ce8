import Foundation
import LatentEngine

/// The text INFO returns: `# Section` headers and `key:value` lines, as Redis prints them, so tools
/// that read Redis' INFO (redis-cli, exporters) can read it too.
struct InfoReport {
    static var version: String { BuildInfo.version }
    let executor: CommandExecutor

    static let sections = ["server", "clients", "stats", "memory", "persistence", "keyspace"]

    func render(section: String?) -> String {
        let wanted: [String]
        switch section {
        case nil, "all", "default", "everything": wanted = InfoReport.sections
        case "commandstats": wanted = ["stats"]
        case let s?: wanted = InfoReport.sections.contains(s) ? [s] : []
        }
        return wanted.map { render($0) }.joined(separator: "\r\n")
    }

    private func render(_ section: String) -> String {
        let config = executor.configuration
        let catalog = executor.catalog
        var lines: [(String, String)] = []
        switch section {
        case "server":
            lines = [("redis_version", "8.0.0"), ("latentdb_version", InfoReport.version), ("redis_mode", "standalone"),
                     ("process_id", String(ProcessInfo.processInfo.processIdentifier)),
                     ("tcp_port", String(config.port)),
                     ("uptime_in_seconds", String(Int(Date().timeIntervalSince(executor.stats.startTime)))),
                     ("data_dir", config.dataDirectory),
                     ("latentdb_git_sha1", BuildInfo.gitCommit), ("latentdb_build_date", BuildInfo.buildDate),
                     ("rocksdb_version", BuildInfo.rocksDBVersion), ("distance_kernels", BuildInfo.kernelPath),
                     ("config_file", executor.settings.configFile.map { URL(fileURLWithPath: $0).standardizedFileURL.path } ?? "")]
        case "clients":
            let buffers = executor.clients.all.map(\.buffers)
            lines = [("connected_clients", String(executor.stats.connectedClients)), ("maxclients", String(config.maxClients)),
                     ("client_recent_max_input_buffer", String(buffers.map(\.query).max() ?? 0)),
                     ("client_recent_max_output_buffer", String(buffers.map(\.output).max() ?? 0))]
        case "stats":
            let s = executor.stats.snapshot()
            lines = [("total_connections_received", String(s.total)), ("rejected_connections", String(s.rejected)),
                     ("total_commands_processed", String(s.commands)), ("total_error_replies", String(s.errors))]
            let c = executor.cache.snapshot()
            lines += [("query_cache_enabled", executor.cache.isEnabled ? "1" : "0"), ("query_cache_hits", String(c.hits)),
                      ("query_cache_misses", String(c.misses)), ("query_cache_evictions", String(c.evictions)),
                      ("query_cache_bytes", String(c.bytes)), ("query_cache_entries", String(c.entries)),
                      ("query_cache_capacity_bytes", String(executor.cache.capacityBytes))]
            lines += s.calls.sorted { $0.key < $1.key }.map { ("cmdstat_\($0.key)", "calls=\($0.value)") }
        case "memory":
            let vectors = catalog.memoryBytes
            lines = [("used_memory_rss", String(InfoReport.residentBytes())), ("used_memory_vectors", String(vectors))]
        case "persistence":
            lines = [("fsync", catalog.fsync.rawValue), ("storage_engine", "rocksdb")]
            if let st = catalog.storageStatus {
                // As Redis' rdb_last_bgsave_status: whether writes can be persisted now, and why not.
                lines += [("storage_writes_ok", st.writesOK ? "1" : "0"), ("storage_read_only", st.readOnly ? "1" : "0"),
                          ("storage_write_stops", String(st.stops)), ("storage_resumes", String(st.resumes)),
                          ("storage_last_error", (st.lastError ?? "").replacingOccurrences(of: "\r", with: " ")
                            .replacingOccurrences(of: "\n", with: " "))]
            }
        case "keyspace":
            let all = catalog.all
            lines = [("collections", String(all.count)), ("vectors", String(all.reduce(0) { $0 + $1.count }))]
            lines += all.sorted { $0.name < $1.name }.map {
                ("collection_\($0.name)", "size=\($0.count),dim=\($0.dimension),metric=\($0.metric.rawValue)")
            }
        default:
            break
        }
        let title = section.prefix(1).uppercased() + section.dropFirst()
        return "# \(title)\r\n" + lines.map { "\($0.0):\($0.1)\r\n" }.joined()
    }

    /// Resident set size from /proc (Linux); 0 where that is not available.
    static func residentBytes() -> Int {
        guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = statm.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
