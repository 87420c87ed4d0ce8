import Foundation
import LatentEngine
import LatentProtocol
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Prometheus

/// Answers one error and closes: what a connection over --max-clients gets.
final class RejectConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let reason: String

    init(reason: String) { self.reason = reason }

    func channelActive(context: ChannelHandlerContext) {
        var buffer = context.channel.allocator.buffer(capacity: 64)
        RESPValue.err(reason).write(into: &buffer)
        context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in context.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}

public struct ServerStartError: Error, CustomStringConvertible {
    public let description: String
}

/// The TCP server: NIO event loops for I/O, a worker pool for requests, and an orderly shutdown
/// (stop accepting, let every connection finish what it received, then the caller closes the store).
///
/// Guarding: `serverChannel` is set by `start()` before any connection exists and read after; the
/// connection table and counters are NIOLockedValueBoxes; everything else is immutable.
public final class LatentServer: @unchecked Sendable {
    /// The configuration at startup (the live one is `executor.configuration`).
    public let configuration: ServerConfiguration
    public let executor: CommandExecutor
    private let group: MultiThreadedEventLoopGroup
    private let pools: WorkerPools
    private let logger: Logger
    private var serverChannel: Channel?
    private var metricsChannel: Channel?
    private let connections = NIOLockedValueBox([ObjectIdentifier: Channel]())
    private let nextSessionId = NIOLockedValueBox(0)
    private let shutdownPromise: EventLoopPromise<Void>
    private let shutdownOnce = NIOLockedValueBox(false)

    public convenience init(configuration: ServerConfiguration, catalog: CollectionCatalog, logger: Logger) {
        self.init(settings: RuntimeConfiguration(configuration), catalog: catalog, logger: logger)
    }

    /// `metricsRegistry`: where /metrics' series live (latentd passes the one it installed as the
    /// swift-metrics backend); used only with `--metrics-port`.
    public init(settings: RuntimeConfiguration, catalog: CollectionCatalog, logger: Logger,
                metricsRegistry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        let configuration = settings.current
        self.configuration = configuration
        self.logger = logger
        executor = CommandExecutor(catalog: catalog, settings: settings,
                                   metrics: configuration.metricsPort >= 0 ? ServerMetrics(registry: metricsRegistry) : nil)
        group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, configuration.eventLoopThreads))
        pools = WorkerPools(threadsEach: max(1, configuration.workerThreads))
        shutdownPromise = group.next().makePromise()
    }

    /// The port actually bound (useful with port 0).
    public var boundPort: Int? { serverChannel?.localAddress?.port }
    /// The metrics port actually bound (nil without --metrics-port).
    public var boundMetricsPort: Int? { metricsChannel?.localAddress?.port }

    /// Binds the listening socket. A port already in use fails here with a clear message.
    public func start() throws {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            // A client that sends its requests and then shuts down its side (nc, scripts) still gets every reply.
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { [self] channel in
                self.initialize(channel)
            }
        do {
            serverChannel = try bootstrap.bind(host: configuration.host, port: configuration.port).wait()
        } catch {
            throw ServerStartError(description: "cannot listen on \(configuration.host):\(configuration.port): \(error)"
                + (("\(error)".contains("in use")) ? " (another process already uses this port; choose another with --port)" : ""))
        }
        logger.info("latentd listening", metadata: ["address": "\(configuration.host):\(boundPort ?? configuration.port)"])
        if let metrics = executor.metrics { try startMetrics(metrics) }
        executor.replication.listeningPort = boundPort ?? configuration.port
        if let leader = configuration.replicaOf {
            guard executor.replication.reopenCatalog != nil else {
                throw ServerStartError(description: "replicaof needs a way to reopen the store (set replication.reopenCatalog)")
            }
            try executor.replicate(from: leader.host, port: leader.port)
        }
    }

    private func startMetrics(_ metrics: ServerMetrics) throws {
        let executor = self.executor
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(MetricsHTTPHandler(metrics: metrics, executor: executor))
                }
            }
        do {
            metricsChannel = try bootstrap.bind(host: configuration.host, port: configuration.metricsPort).wait()
        } catch {
            throw ServerStartError(description: "cannot serve metrics on \(configuration.host):\(configuration.metricsPort): \(error)")
        }
        logger.info("metrics served", metadata: ["address": "http://\(configuration.host):\(boundMetricsPort ?? 0)/metrics"])
    }

    private func initialize(_ channel: Channel) -> EventLoopFuture<Void> {
        // Read per connection: CONFIG SET maxclients / timeout apply to connections made after it.
        let configuration = executor.configuration
        guard executor.stats.connectionOpened(maxClients: configuration.maxClients) else {
            return channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(RejectConnectionHandler(reason: "max number of clients reached"))
            }
        }
        let id = ObjectIdentifier(channel)
        connections.withLockedValue { $0[id] = channel }
        let stats = executor.stats
        channel.closeFuture.whenComplete { [connections] _ in
            stats.connectionClosed()
            connections.withLockedValue { $0[id] = nil }
        }
        let sessionId = nextSessionId.withLockedValue { $0 += 1; return $0 }
        let session = Session(id: sessionId, authenticated: configuration.password == nil)
        let record = ClientRecord(id: sessionId, address: Self.describe(channel.remoteAddress),
                                  localAddress: Self.describe(channel.localAddress), close: { [weak channel] in channel?.close(promise: nil) })
        session.record = record
        executor.clients.register(record)
        let clients = executor.clients, backups = executor.backups
        channel.closeFuture.whenComplete { _ in
            clients.unregister(sessionId)
            backups.endAll(owner: sessionId)
            // A client that made the server hold large buffers: give the freed memory back to the OS.
            if record.buffers.peak > 1 << 20 { DispatchQueue.global(qos: .utility).async { ReturnMemory.toSystem() } }
        }
        let handler = RESPServerHandler(executor: executor, pools: pools, session: session, logger: logger,
                                        onShutdown: { [weak self] in self?.requestShutdown() })
        return channel.pipeline.eventLoop.makeCompletedFuture {
            if configuration.idleTimeoutSeconds > 0 {
                try channel.pipeline.syncOperations.addHandler(
                    IdleStateHandler(readTimeout: .seconds(Int64(configuration.idleTimeoutSeconds))))
            }
            var limits = configuration.limits
            limits.maxQueryBufferBytes = configuration.queryBufferLimit
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(RESPDecoder(limits: limits, authentication: session.authentication)))
            try channel.pipeline.syncOperations.addHandler(handler)
        }
    }

    static func describe(_ address: SocketAddress?) -> String {
        guard let address else { return "?:0" }
        return "\(address.ipAddress ?? "?"):\(address.port ?? 0)"
    }

    /// Asks the server to shut down (SHUTDOWN, SIGTERM, SIGINT). Safe to call from any thread, repeatedly.
    public func requestShutdown() {
        let first = shutdownOnce.withLockedValue { done -> Bool in
            defer { done = true }
            return !done
        }
        if first { shutdownPromise.succeed(()) }
    }

    /// Blocks until shutdown is requested, then drains connections and stops the threads.
    public func runUntilShutdown(drainTimeout: TimeAmount = .seconds(10)) {
        try? shutdownPromise.futureResult.wait()
        logger.info("shutting down: no new connections; finishing requests in flight")
        // A replica stops applying first: nothing writes to the store after its link stopped.
        executor.replication.link?.stop()
        executor.replication.leader.releaseWaiters()
        try? serverChannel?.close().wait()
        try? metricsChannel?.close().wait()
        let open = connections.withLockedValue { Array($0.values) }
        for channel in open {
            channel.pipeline.fireUserInboundEventTriggered(DrainEvent())
        }
        let loop = group.next()
        let allClosed = EventLoopFuture.andAllComplete(open.map { $0.closeFuture }, on: loop)
        let timeout = loop.scheduleTask(in: drainTimeout) {
            for channel in open { channel.close(promise: nil) }
        }
        try? allClosed.wait()
        timeout.cancel()
        pools.shutdown()
        try? group.syncShutdownGracefully()
    }
}
