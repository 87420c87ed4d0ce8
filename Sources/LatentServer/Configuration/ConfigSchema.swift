import Foundation
import LatentProtocol
import LatentStorage
import Logging

/// A setting's value is wrong: the message says what is accepted.
public struct ConfigValueError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// One setting: its `latentd.conf` directive (Redis' name where Redis has one), its command-line flag,
/// how its text is validated and applied, how CONFIG GET shows it, and whether CONFIG SET may change it
/// while the server runs. Flags, file and CONFIG SET all go through `set`, so they accept the same values.
public struct ConfigDirective: Sendable {
    public let name: String
    public let flag: String
    public let help: String
    public let runtime: Bool
    public let get: @Sendable (ServerConfiguration) -> String
    public let set: @Sendable (inout ServerConfiguration, String) throws -> Void
    /// Takes several words (`client-output-buffer-limit normal 0 0 0`); a file line's words are joined.
    public var multiWord = false
}

public enum ConfigSchema {
    public static let directives: [ConfigDirective] = [
        ConfigDirective(name: "bind", flag: "bind", help: "Address to listen on.", runtime: false,
                        get: { $0.host }, set: { c, v in
                            guard !v.isEmpty, !v.contains(" ") else { throw ConfigValueError("bind takes one address, e.g. 127.0.0.1") }
                            c.host = v
                        }),
        ConfigDirective(name: "port", flag: "port", help: "TCP port to listen on (0 picks a free one).", runtime: false,
                        get: { String($0.port) }, set: { c, v in c.port = try integer(v, "port", 0...65535) }),
        ConfigDirective(name: "dir", flag: "data-dir", help: "Directory of the RocksDB store (created when missing).",
                        runtime: false, get: { $0.dataDirectory }, set: { c, v in
                            guard !v.isEmpty else { throw ConfigValueError("dir needs a directory path") }
                            c.dataDirectory = v
                        }),
        ConfigDirective(name: "requirepass", flag: "requirepass",
                        help: "Require AUTH with this password (default: $LATENTD_PASSWORD, or none).", runtime: false,
                        get: { $0.password ?? "" }, set: { c, v in c.password = v.isEmpty ? nil : v }),
        ConfigDirective(name: "appendfsync", flag: "fsync",
                        help: "When the write-ahead log is synced: always (before each reply), everysec, no.", runtime: false,
                        get: { $0.fsync.rawValue }, set: { c, v in
                            guard let p = FsyncPolicy(rawValue: v.lowercased()) else {
                                throw ConfigValueError("appendfsync must be always, everysec or no, got '\(v)'")
                            }
                            c.fsync = p
                        }),
        ConfigDirective(name: "maxclients", flag: "max-clients", help: "Most concurrent client connections.", runtime: true,
                        get: { String($0.maxClients) }, set: { c, v in c.maxClients = try integer(v, "maxclients", 1...1_000_000) }),
        ConfigDirective(name: "timeout", flag: "timeout",
                        help: "Close a client connection after this many seconds without a request (0 = never).",
                        runtime: true, get: { String($0.idleTimeoutSeconds) },
                        set: { c, v in c.idleTimeoutSeconds = try integer(v, "timeout", 0...(365 * 86400)) }),
        ConfigDirective(name: "query-cache-mb", flag: "query-cache-mb",
                        help: "MiB of VSIM replies cached for repeated queries (0 turns the cache off).", runtime: true,
                        get: { String($0.queryCacheBytes >> 20) },
                        set: { c, v in c.queryCacheBytes = try integer(v, "query-cache-mb", 0...(1 << 20)) << 20 }),
        ConfigDirective(name: "replicaof", flag: "replicaof",
                        help: "Follow the leader at \"HOST PORT\" as a read-only replica (default: none, lead).", runtime: false,
                        get: { $0.replicaOf.map { "\($0.host) \($0.port)" } ?? "no one" }, set: { c, v in
                            let words = v.split(separator: " ").map(String.init)
                            if words.isEmpty || words.map({ $0.lowercased() }) == ["no", "one"] { c.replicaOf = nil; return }
                            guard words.count == 2, !words[0].isEmpty else { throw ConfigValueError("replicaof takes \"HOST PORT\", e.g. 127.0.0.1 7379") }
                            c.replicaOf = (words[0], try integer(words[1], "replicaof port", 1...65535))
                        }, multiWord: true),
        ConfigDirective(name: "masterauth", flag: "masterauth",
                        help: "Password a replica sends its leader with AUTH (the leader's requirepass; default: none).", runtime: true,
                        get: { $0.leaderPassword ?? "" }, set: { c, v in c.leaderPassword = v.isEmpty ? nil : v }),
        ConfigDirective(name: "min-replicas-to-write", flag: "min-replicas-to-write",
                        help: "Take a write only with at least this many replicas whose last acknowledgement is at most min-replicas-max-lag seconds old, and answer it once that many have it (default 0: off).",
                        runtime: true, get: { String($0.minReplicasToWrite) },
                        set: { c, v in c.minReplicasToWrite = try integer(v, "min-replicas-to-write", 0...1000) }),
        ConfigDirective(name: "min-replicas-max-lag", flag: "min-replicas-max-lag",
                        help: "Seconds a replica may go without acknowledging and still count for min-replicas-to-write (default 10).",
                        runtime: true, get: { String($0.minReplicasMaxLagSeconds) },
                        set: { c, v in c.minReplicasMaxLagSeconds = try integer(v, "min-replicas-max-lag", 1...86400) }),
        ConfigDirective(name: "repl-backlog-size", flag: "repl-backlog-size",
                        help: "Bytes of the replication stream kept so a replica that reconnects resumes without a full copy, e.g. 256mb (default 64mb).",
                        runtime: true, get: { String($0.replBacklogBytes) },
                        set: { c, v in c.replBacklogBytes = try memory(v, "repl-backlog-size", 16384...(1 << 40)) }),
        ConfigDirective(name: "cluster", flag: "cluster",
                        help: "Join the cluster whose etcd endpoints these are, e.g. http://127.0.0.1:2379 (several: comma-separated; default: none, a single node).",
                        runtime: false, get: { $0.clusterEndpoints ?? "" },
                        set: { c, v in c.clusterEndpoints = v.isEmpty ? nil : v }),
        ConfigDirective(name: "node-id", flag: "node-id", help: "This node's id in the cluster (default: HOSTNAME-PORT).",
                        runtime: false, get: { $0.nodeId ?? "" }, set: { c, v in
                            guard v.isEmpty || clusterName(v) else {
                                throw ConfigValueError("node-id takes 1 to 64 letters, digits, '-', '_' or '.', got '\(v.prefix(80))'")
                            }
                            c.nodeId = v.isEmpty ? nil : v
                        }),
        ConfigDirective(name: "advertise", flag: "advertise",
                        help: "HOST:PORT other nodes and clients reach this node at (default: the bind address and port).",
                        runtime: false, get: { $0.advertise ?? "" }, set: { c, v in
                            guard v.isEmpty || (v.split(separator: ":").count == 2 && Int(v.split(separator: ":")[1]).map({ (1...65535).contains($0) }) == true) else {
                                throw ConfigValueError("advertise takes HOST:PORT, e.g. 10.0.0.5:7379")
                            }
                            c.advertise = v.isEmpty ? nil : v
                        }),
        ConfigDirective(name: "cluster-name", flag: "cluster-name",
                        help: "Name of the cluster: its keys in etcd are under /latentdb/NAME/ (default latentdb).", runtime: false,
                        get: { $0.clusterName }, set: { c, v in
                            guard clusterName(v) else { throw ConfigValueError("cluster-name takes 1 to 64 letters, digits, '-', '_' or '.'") }
                            c.clusterName = v
                        }),
        ConfigDirective(name: "cluster-lease-ttl", flag: "cluster-lease-ttl",
                        help: "Seconds a node stays a member without renewing its etcd lease (default 10).", runtime: false,
                        get: { String($0.clusterLeaseTTL) }, set: { c, v in c.clusterLeaseTTL = try integer(v, "cluster-lease-ttl", 1...3600) }),
        ConfigDirective(name: "min-free-disk", flag: "min-free-disk",
                        help: "Refuse writes (MISCONF) while the data directory's disk has less free space, e.g. 256mb (the default; 0 = no guard).",
                        runtime: false, get: { String($0.minFreeDiskBytes) },
                        set: { c, v in c.minFreeDiskBytes = try memory(v, "min-free-disk", 0...(1 << 50)) }),
        ConfigDirective(name: "recover-truncate", flag: "recover-truncate",
                        help: "yes: open a store whose WAL is damaged, dropping every write after the damage (logged). Default no: refuse to start.",
                        runtime: false, get: { $0.recoverTruncate ? "yes" : "no" },
                        set: { c, v in c.recoverTruncate = try yesNo(v, "recover-truncate") }),
        ConfigDirective(name: "proto-max-bulk-len", flag: "proto-max-bulk-len", help: "Largest bulk string in a request, in bytes.",
                        runtime: false, get: { String($0.limits.maxBulkBytes) },
                        set: { c, v in
                            c.limits.maxBulkBytes = try integer(v, "proto-max-bulk-len", 1024...RESPDecoderLimits.largestBulkBytes)
                        }),
        ConfigDirective(name: "loglevel", flag: "log-level",
                        help: "trace, debug, info, notice, warning, error or critical (Redis' verbose and nothing also accepted).",
                        runtime: true, get: { $0.logLevel.rawValue }, set: { c, v in c.logLevel = try logLevel(v) }),
        ConfigDirective(name: "metrics-port", flag: "metrics-port",
                        help: "Serve Prometheus metrics at http://BIND:PORT/metrics (default -1: off; 0 picks a free port).",
                        runtime: false, get: { String($0.metricsPort) },
                        set: { c, v in c.metricsPort = try integer(v, "metrics-port", -1...65535) }),
        ConfigDirective(name: "slowlog-log-slower-than", flag: "slowlog-log-slower-than",
                        help: "Log commands that run at least this many microseconds to SLOWLOG (default 10000; 0 logs every command, a negative value none).",
                        runtime: true, get: { String($0.slowlogSlowerThanMicroseconds) },
                        set: { c, v in c.slowlogSlowerThanMicroseconds = try integer(v, "slowlog-log-slower-than", -1...Int(Int32.max)) }),
        ConfigDirective(name: "slowlog-max-len", flag: "slowlog-max-len",
                        help: "Most SLOWLOG entries kept, newest first (default 128).", runtime: true,
                        get: { String($0.slowlogMaxLength) },
                        set: { c, v in c.slowlogMaxLength = try integer(v, "slowlog-max-len", 0...1_000_000) }),
        ConfigDirective(name: "client-query-buffer-limit", flag: "client-query-buffer-limit",
                        help: "Most bytes of received, not yet run requests per client, e.g. 1gb (the default); over it the client is disconnected.",
                        runtime: true, get: { String($0.queryBufferLimit) },
                        set: { c, v in c.queryBufferLimit = try memory(v, "client-query-buffer-limit", 1 << 20...(1 << 40)) }),
        ConfigDirective(name: "client-output-buffer-limit", flag: "client-output-buffer-limit",
                        help: "normal HARD SOFT SECONDS: disconnect a client whose unsent replies exceed HARD bytes, or SOFT bytes for SECONDS (0 = no limit; default normal 0 0 0).",
                        runtime: true,
                        get: { "normal \($0.outputBufferLimit.hard) \($0.outputBufferLimit.soft) \($0.outputBufferLimit.softSeconds)" },
                        set: { c, v in c.outputBufferLimit = try outputLimit(v) }, multiWord: true),
    ]

    /// Node ids and cluster names are etcd key parts: letters, digits, '-', '_' and '.', 1 to 64 bytes.
    static func clusterName(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.count <= 64 && s.utf8.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2D || b == 0x5F || b == 0x2E
        }
    }

    static func yesNo(_ text: String, _ name: String) throws -> Bool {
        switch text.lowercased() {
        case "yes", "true", "1": return true
        case "no", "false", "0": return false
        default: throw ConfigValueError("\(name) must be yes or no, got '\(text.prefix(64))'")
        }
    }

    /// Redis' memory sizes: a number with an optional unit, k = 1000, kb = 1024, m, mb, g, gb likewise.
    static func memory(_ text: String, _ name: String, _ range: ClosedRange<Int>) throws -> Int {
        let t = text.lowercased().trimmingCharacters(in: .whitespaces)
        let units: [(String, Int)] = [("gb", 1 << 30), ("mb", 1 << 20), ("kb", 1 << 10), ("g", 1_000_000_000), ("m", 1_000_000), ("k", 1_000), ("b", 1)]
        var number = t
        var multiplier = 1
        for (suffix, m) in units where t.hasSuffix(suffix) {
            number = String(t.dropLast(suffix.count))
            multiplier = m
            break
        }
        guard let n = Int(number), n >= 0 else {
            throw ConfigValueError("\(name) must be a size such as 1048576, 512mb or 1gb, got '\(text.prefix(64))'")
        }
        let (bytes, overflow) = n.multipliedReportingOverflow(by: multiplier)
        guard !overflow, range.contains(bytes) else {
            throw ConfigValueError("\(name) must be between \(range.lowerBound) and \(range.upperBound) bytes, got '\(text.prefix(64))'")
        }
        return bytes
    }

    static func outputLimit(_ text: String) throws -> ServerConfiguration.OutputBufferLimit {
        let words = text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard words.count == 4, words[0].lowercased() == "normal" else {
            throw ConfigValueError("client-output-buffer-limit takes: normal HARD SOFT SECONDS (latentd has normal clients only), got '\(text.prefix(64))'")
        }
        return .init(hard: try memory(words[1], "client-output-buffer-limit hard", 0...(1 << 40)),
                     soft: try memory(words[2], "client-output-buffer-limit soft", 0...(1 << 40)),
                     softSeconds: try integer(words[3], "client-output-buffer-limit seconds", 0...86400))
    }

    /// The directive called `name`, by its directive or flag name, case-insensitively.
    public static func directive(_ name: String) -> ConfigDirective? {
        let n = name.lowercased()
        return directives.first { $0.name == n || $0.flag == n }
    }

    static func integer(_ text: String, _ name: String, _ range: ClosedRange<Int>) throws -> Int {
        guard let v = Int(text.trimmingCharacters(in: .whitespaces)), range.contains(v) else {
            throw ConfigValueError("\(name) must be an integer in \(range.lowerBound)...\(range.upperBound), got '\(text.prefix(64))'")
        }
        return v
    }

    static func logLevel(_ text: String) throws -> Logger.Level {
        switch text.lowercased() {
        case "verbose": return .info
        case "nothing": return .critical
        case let s:
            guard let level = Logger.Level(rawValue: s) else {
                throw ConfigValueError("loglevel must be trace, debug, info, notice, warning, error or critical, got '\(text.prefix(64))'")
            }
            return level
        }
    }
}
