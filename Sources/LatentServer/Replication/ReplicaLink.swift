import Foundation
import LatentProtocol
import LatentStorage
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A replica's connection to its leader: connects (and reconnects a second after any failure), sends
/// `REPLCONF listening-port` and `PSYNC id offset` from the position stored with its data, takes a full
/// copy when the leader cannot continue, then applies the stream and acknowledges it.
///
/// Threading: the link has its own event loop (one thread), and everything it does runs there, applying
/// writes and installing a copy included: that work blocks only the link, never a client connection.
/// Guarding: `state` is a NIOLockedValueBox (INFO and ROLE read it from request threads); `group` and the
/// settings are immutable.
public final class ReplicaLink: @unchecked Sendable {
    public struct Status: Sendable {
        /// Redis' words: "connect", "connecting", "sync", "connected".
        public var link = "connect"
        public var position: ReplicationPosition?
        /// Uptime nanoseconds of the last byte from the leader.
        public var lastIO: UInt64 = 0
        public var syncBytesReceived = 0
        public var syncBytesTotal = 0
        /// Stream bytes received since the link started (a measure of how much a resync moved).
        public var streamBytes: Int64 = 0
        public var copyBytes: Int64 = 0
        public var fullSyncs = 0
        public var partialSyncs = 0
    }

    public let host: String
    public let port: Int
    let executor: CommandExecutor
    let logger: Logger
    let listeningPort: Int
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let state: NIOLockedValueBox<(status: Status, channel: Channel?, stopped: Bool)>

    init(host: String, port: Int, executor: CommandExecutor, listeningPort: Int, position: ReplicationPosition?, logger: Logger) {
        self.host = host
        self.port = port
        self.executor = executor
        self.listeningPort = listeningPort
        self.logger = logger
        var status = Status()
        status.position = position
        state = NIOLockedValueBox((status, nil, false))
    }

    public var status: Status { state.withLockedValue { $0.status } }

    func start() { connect() }

    private func connect() {
        guard !state.withLockedValue({ $0.stopped }) else { return }
        state.withLockedValue { $0.status.link = "connecting" }
        let link = self
        ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ReplicaLinkHandler(link: link))
                }
            }
            .connect(host: host, port: port)
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    let keep = link.state.withLockedValue { s -> Bool in
                        if s.stopped { return false }
                        s.channel = channel
                        return true
                    }
                    if !keep { channel.close(promise: nil) }
                case .failure(let error):
                    link.logger.warning("cannot reach the leader", metadata: ["leader": "\(link.host):\(link.port)", "error": "\(error)"])
                    link.retry()
                }
            }
    }

    /// Connects again in a second (after a failure or a lost connection), unless stopped.
    func retry() {
        state.withLockedValue {
            $0.channel = nil
            if !$0.stopped { $0.status.link = "connect" }
        }
        guard !state.withLockedValue({ $0.stopped }) else { return }
        group.next().scheduleTask(in: .seconds(1)) { [self] in connect() }
    }

    /// Closes the connection and stops reconnecting; returns after the link's thread finished what it
    /// was applying (so a promotion sees every write the replica acknowledged).
    func stop() {
        let channel: Channel? = state.withLockedValue {
            $0.stopped = true
            $0.status.link = "connect"
            return $0.channel
        }
        try? channel?.close().wait()
        // Everything the link does runs on its loop: once this turn runs, no apply is in progress.
        try? group.next().submit {}.wait()
        try? group.syncShutdownGracefully()
    }

    func update(_ change: (inout Status) -> Void) { state.withLockedValue { change(&$0.status) } }
    var isStopped: Bool { state.withLockedValue { $0.stopped } }
}

/// The protocol of a replica's link: handshake lines, then the copy's frames, then the stream.
/// Touched only on the link's event loop.
final class ReplicaLinkHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum Phase {
        case handshake(okLines: Int)
        case copy(replicationId: String, offset: Int64)
        case stream
    }

    private let link: ReplicaLink
    private var phase = Phase.handshake(okLines: 0)
    private var buffer = ByteBuffer()
    private var decoder: RESPDecoder
    private var staging: String { link.executor.catalog.store.directory + "/.latentdb-sync-incoming" }
    private var manifest: BackupManifest?
    private var openFile: (name: String, handle: FileHandle)?
    private var ackTask: RepeatedTask?

    init(link: ReplicaLink) {
        self.link = link
        var limits = RESPDecoderLimits()
        limits.maxQueryBufferBytes = 1 << 40
        decoder = RESPDecoder(limits: limits)
    }

    func channelActive(context: ChannelHandlerContext) {
        let position = link.status.position
        var out = context.channel.allocator.buffer(capacity: 128)
        if let password = link.executor.configuration.leaderPassword {
            ReplicationEncoding.encode(["AUTH", password], into: &out)
        }
        ReplicationEncoding.encode(["REPLCONF", "listening-port", String(link.listeningPort)], into: &out)
        ReplicationEncoding.encode(["PSYNC", position?.replicationId ?? "?", String(position?.offset ?? -1)], into: &out)
        context.writeAndFlush(wrapOutboundOut(out), promise: nil)
        link.update { $0.link = "sync" }
    }

    func channelInactive(context: ChannelHandlerContext) {
        ackTask?.cancel()
        try? openFile?.handle.close()
        openFile = nil
        link.logger.warning("lost the connection to the leader", metadata: ["leader": "\(link.host):\(link.port)"])
        link.retry()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        link.logger.error("replication link error: \(error)")
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        buffer.writeBuffer(&incoming)
        link.update { $0.lastIO = DispatchTime.now().uptimeNanoseconds }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        do {
            try process(context: context)
        } catch {
            link.logger.error("replication stopped: \(error); connecting again for a new copy")
            link.update { $0.position = nil }
            context.close(promise: nil)
        }
        buffer.discardReadBytes()
    }

    private func process(context: ChannelHandlerContext) throws {
        while case .handshake(let okLines) = phase {
            guard let line = readLine() else { return }
            if line.hasPrefix("+OK") {
                phase = .handshake(okLines: okLines + 1)
            } else if line.hasPrefix("+FULLRESYNC ") {
                let parts = line.split(separator: " ")
                guard parts.count == 3, let offset = Int64(parts[2]), offset >= 0 else { throw LinkError("bad reply to PSYNC: \(line.prefix(80))") }
                phase = .copy(replicationId: String(parts[1]), offset: offset)
                link.logger.info("taking a full copy from the leader", metadata: ["offset": "\(offset)"])
            } else if line.hasPrefix("+CONTINUE") {
                guard let position = link.status.position else { throw LinkError("the leader continued a stream this replica never had") }
                phase = .stream
                link.update { $0.partialSyncs += 1; $0.link = "connected" }
                link.logger.info("continuing the stream", metadata: ["offset": "\(position.offset)"])
                startAcks(context: context)
            } else if line.hasPrefix("-") {
                throw LinkError("the leader refused: \(line.dropFirst().prefix(200))")
            } else {
                throw LinkError("unexpected reply from the leader: \(line.prefix(80))")
            }
        }
        if case .copy(let id, let offset) = phase {
            while let frame = try decoder.next(&buffer) {
                guard let frame, let kind = frame.first.map({ String(buffer: $0) }) else { continue }
                if try receive(kind, frame) {
                    try install(ReplicationPosition(replicationId: id, offset: offset))
                    phase = .stream
                    link.update { $0.fullSyncs += 1; $0.link = "connected" }
                    startAcks(context: context)
                    break
                }
            }
        }
        guard case .stream = phase else { return }
        var commands: [[ByteBuffer]] = []
        var bytes: Int64 = 0
        var committedCount = 0, committedBytes: Int64 = 0
        var inMulti = false
        while let unit = try decoder.next(&buffer) {
            guard let command = unit else { continue }
            commands.append(command)
            bytes += ReplicationEncoding.length(of: command)
            let name = String(buffer: command[0]).uppercased()
            if name == "MULTI" { inMulti = true } else if name == "EXEC" { inMulti = false }
            // Applied only up to the end of a transaction: MULTI..EXEC goes in one batch.
            if !inMulti {
                committedCount = commands.count
                committedBytes = bytes
            }
            if committedCount >= 512 {
                try apply(Array(commands[..<committedCount]), bytes: committedBytes)
                commands.removeFirst(committedCount)
                bytes -= committedBytes
                committedCount = 0
                committedBytes = 0
            }
        }
        if committedCount > 0 { try apply(Array(commands[..<committedCount]), bytes: committedBytes) }
        if committedCount < commands.count {
            // An unfinished transaction: hand its commands back to be decoded again with the rest.
            var again = ByteBuffer()
            for c in commands[committedCount...] { ReplicationEncoding.encode(c, into: &again) }
            again.writeBuffer(&buffer)
            buffer = again
        }
        sendAck(context: context)
    }

    private func readLine() -> String? {
        let view = buffer.readableBytesView
        guard let cr = view.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        let line = String(decoding: view[view.startIndex..<cr], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        buffer.moveReaderIndex(forwardBy: cr - view.startIndex + 1)
        return line
    }

    /// One frame of a full copy; true at SYNCEND.
    private func receive(_ kind: String, _ frame: [ByteBuffer]) throws -> Bool {
        let fm = FileManager.default
        switch kind {
        case "SYNCMANIFEST":
            guard frame.count == 2 else { throw LinkError("bad SYNCMANIFEST frame") }
            let text = String(buffer: frame[1])
            let parsed = try BackupManifest.parse(text)
            try? fm.removeItem(atPath: staging)
            try fm.createDirectory(atPath: staging, withIntermediateDirectories: true)
            try text.write(toFile: staging + "/" + BackupManifest.fileName, atomically: true, encoding: .utf8)
            manifest = parsed
            link.update { $0.syncBytesTotal = parsed.totalBytes; $0.syncBytesReceived = 0 }
        case "SYNCDATA":
            guard frame.count == 3, let manifest else { throw LinkError("SYNCDATA before SYNCMANIFEST") }
            let name = String(buffer: frame[1])
            guard manifest.files.contains(where: { $0.name == name }) else { throw LinkError("SYNCDATA for a file not in the manifest: \(name.prefix(64))") }
            if openFile?.name != name {
                try openFile?.handle.close()
                let path = staging + "/" + name
                guard fm.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
                    throw LinkError("cannot write \(path)")
                }
                openFile = (name, handle)
            }
            let data = frame[2]
            try openFile?.handle.write(contentsOf: Data(data.readableBytesView))
            link.update { $0.syncBytesReceived += data.readableBytes; $0.copyBytes += Int64(data.readableBytes) }
        case "SYNCEND":
            try openFile?.handle.close()
            openFile = nil
            return true
        default:
            throw LinkError("unexpected frame during a full copy: \(kind.prefix(32))")
        }
        return false
    }

    private func install(_ position: ReplicationPosition) throws {
        try link.executor.installReplicaCopy(from: staging, position: position)
        link.update { $0.position = position }
        manifest = nil
    }

    private func apply(_ commands: [[ByteBuffer]], bytes: Int64) throws {
        guard let current = link.status.position, !link.isStopped else { return }
        let next = ReplicationPosition(replicationId: current.replicationId, offset: current.offset + bytes)
        try link.executor.applyReplicated(commands, position: next)
        link.update {
            $0.position = next
            $0.streamBytes += bytes
        }
    }

    private func sendAck(context: ChannelHandlerContext) {
        guard case .stream = phase, let offset = link.status.position?.offset else { return }
        var out = context.channel.allocator.buffer(capacity: 48)
        ReplicationEncoding.encode(["REPLCONF", "ACK", String(offset)], into: &out)
        context.writeAndFlush(wrapOutboundOut(out), promise: nil)
    }

    private func startAcks(context: ChannelHandlerContext) {
        sendAck(context: context)
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        ackTask = context.eventLoop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
            let (handler, context) = loopBound.value
            handler.sendAck(context: context)
        }
    }
}

struct LinkError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
