import Foundation

/// The server's effective configuration while it runs: read by every request, changed by CONFIG SET
/// and written back by CONFIG REWRITE. `current` and the observers are guarded by `lock`; observers run
/// under it, after the new values are in place, so two CONFIG SETs apply in one order everywhere.
public final class RuntimeConfiguration: @unchecked Sendable {
    private let lock = NSLock()
    private var value: ServerConfiguration
    private var observers: [@Sendable (ServerConfiguration) -> Void] = []
    /// The file latentd was started with (`--config`), which CONFIG REWRITE rewrites.
    public let configFile: String?

    public init(_ configuration: ServerConfiguration, configFile: String? = nil) {
        value = configuration
        self.configFile = configFile
    }

    public var current: ServerConfiguration { lock.withLock { value } }

    /// Calls `observer` with the configuration after every successful CONFIG SET.
    public func observe(_ observer: @escaping @Sendable (ServerConfiguration) -> Void) {
        lock.withLock { observers.append(observer) }
    }

    /// CONFIG SET name value [name value ...]: all or nothing. Only directives marked runtime may change.
    public func set(_ pairs: [(String, String)]) throws {
        try lock.withLock {
            var next = value
            for (name, text) in pairs {
                guard let d = ConfigSchema.directive(name) else {
                    throw ConfigValueError("Unknown option or number of arguments for CONFIG SET - '\(name.prefix(64))'")
                }
                guard d.runtime else {
                    throw ConfigValueError("CONFIG SET failed (possibly related to argument '\(d.name)') - can't set immutable config: "
                        + "restart latentd with --\(d.flag) or change it in the configuration file")
                }
                do {
                    try d.set(&next, text)
                } catch let e as ConfigValueError {
                    throw ConfigValueError("CONFIG SET failed (possibly related to argument '\(d.name)') - \(e.description)")
                }
            }
            value = next
            for o in observers { o(next) }
        }
    }

    /// CONFIG REWRITE.
    public func rewrite() throws {
        guard let configFile else { throw ConfigValueError("The server is running without a config file") }
        try ConfigFile.rewrite(path: configFile, with: current)
    }
}
