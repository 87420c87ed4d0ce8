import ArgumentParser
import Foundation
import LatentEngine
import LatentProtocol
import LatentServer
import LatentStorage
import Logging

extension FsyncPolicy: ExpressibleByArgument {}
extension Logger.Level: @retroactive ExpressibleByArgument {}

@main
struct LatentD: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "latentd",
        abstract: "LatentDB server: vector collections over a RESP (Redis-compatible) protocol, stored in RocksDB.")

    @Option(help: "Address to listen on.")
    var bind = "127.0.0.1"

    @Option(help: "TCP port to listen on (0 picks a free one).")
    var port = 7379

    @Option(help: "Directory of the RocksDB store (created when missing).")
    var dataDir = "./data"

    @Option(help: "Require AUTH with this password (default: $LATENTD_PASSWORD, or none).")
    var requirepass: String?

    @Option(help: "When the write-ahead log is synced: always (before each reply), everysec, no.")
    var fsync: FsyncPolicy = .everysec

    @Option(help: "Most concurrent client connections.")
    var maxClients = 10_000

    @Option(help: "MiB of VSIM replies cached for repeated queries (0 turns the cache off).")
    var queryCacheMb = 64

    @Option(help: "Largest bulk string in a request, in bytes.")
    var protoMaxBulkLen = 512 * 1024 * 1024

    @Option(help: "Close a client connection after this many seconds without a request (0 = never, as Redis' timeout).")
    var timeout = 0

    @Option(help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: Logger.Level = .info

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0...65535") }
        guard (0...(365 * 86400)).contains(timeout) else { throw ValidationError("--timeout must be 0...31536000 seconds") }
        guard (1...1_000_000).contains(maxClients) else { throw ValidationError("--max-clients must be 1...1000000") }
        guard (0...(1 << 20)).contains(queryCacheMb) else { throw ValidationError("--query-cache-mb must be 0...1048576 (1 TiB)") }
        guard (1024...RESPDecoderLimits.largestBulkBytes).contains(protoMaxBulkLen) else {
            throw ValidationError("--proto-max-bulk-len must be 1024...\(RESPDecoderLimits.largestBulkBytes)")
        }
    }

    func run() throws {
        let level = logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "latentd")
        var config = ServerConfiguration()
        config.host = bind
        config.port = port
        config.dataDirectory = dataDir
        config.password = requirepass ?? ProcessInfo.processInfo.environment["LATENTD_PASSWORD"].flatMap { $0.isEmpty ? nil : $0 }
        config.fsync = fsync
        config.maxClients = maxClients
        config.limits.maxBulkBytes = protoMaxBulkLen
        config.queryCacheBytes = queryCacheMb << 20
        config.idleTimeoutSeconds = timeout

        let catalog: CollectionCatalog
        do {
            catalog = try CollectionCatalog(directory: dataDir, fsync: fsync, logger: logger)
        } catch {
            fail("latentd: cannot open data directory \(dataDir): \(error)")
        }
        let server = LatentServer(configuration: config, catalog: catalog, logger: logger)
        do {
            try server.start()
        } catch {
            catalog.close()
            fail("latentd: \(error)")
        }
        // Announce the bound port on stdout so scripts and tests can use --port 0.
        print("latentd ready on \(bind):\(server.boundPort ?? port)")
        fflush(stdout)

        var sources: [DispatchSourceSignal] = []
        for sig in [SIGTERM, SIGINT] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { server.requestShutdown() }
            source.resume()
            sources.append(source)
        }
        server.runUntilShutdown()
        catalog.close()
        logger.info("latentd stopped; store closed")
        _ = sources
    }

    func fail(_ message: String) -> Never {
        FileHandle.standardError.write((message + "\n").data(using: .utf8)!)
        Foundation.exit(1)
    }
}
