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
    public var limits = RESPDecoderLimits()
    /// Threads that run requests off the event loops (searches, writes).
    public var workerThreads = System.coreCount
    public var eventLoopThreads = System.coreCount
    /// Close a connection after this many seconds without a request (Redis' `timeout`); 0 = never.
    public var idleTimeoutSeconds = 0
    public var logLevel: Logger.Level = .info

    public init() {}

    public static func == (a: ServerConfiguration, b: ServerConfiguration) -> Bool {
        ConfigSchema.directives.allSatisfy { $0.get(a) == $0.get(b) }
    }
}
