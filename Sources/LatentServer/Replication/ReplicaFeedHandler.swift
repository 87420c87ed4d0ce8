import Atomics
import Foundation
import LatentStorage
import Logging
import NIOCore

/// The leader's end of one replica's connection, from its PSYNC on: sends a full copy when the replica
/// cannot continue (a RocksDB checkpoint taken in the write order, so it is exactly the store at one
/// stream offset, sent file by file with its checksummed manifest), then the stream from the replica's
/// offset, and reads the replica's `REPLCONF ACK offset` acknowledgements.
///
/// Wire format after `+FULLRESYNC id offset`: `SYNCMANIFEST text`, then `SYNCDATA file bytes` chunks in
/// manifest order, then `SYNCEND`, each a RESP array; the stream follows (docs/replication.md).
///
/// Threading: every field is touched on the channel's event loop only, except `wakePending` (atomic);
/// the checkpoint and file reads run on a global queue and hop back to the loop.
final class ReplicaFeedHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = [ByteBuffer]
    typealias OutboundOut = ByteBuffer

    enum Start {
        case resume(from: Int64)
        case fullCopy
    }

    static let chunkBytes = 1 << 20

    private let executor: CommandExecutor
    private let leader: ReplicationLeader
    private let connection: Int
    private let logger: Logger
    private let start: Start
    private var context: ChannelHandlerContext?
    /// The next stream offset to send; nil until the copy (if any) is sent.
    private var sent: Int64?
    private let wakePending = ManagedAtomic(false)
    private var closed = false

    init(executor: CommandExecutor, leader: ReplicationLeader, connection: Int, start: Start, logger: Logger) {
        self.executor = executor
        self.leader = leader
        self.connection = connection
        self.start = start
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let pending = wakePending
        let loop = context.eventLoop
        let wake: @Sendable () -> Void = {
            guard !pending.exchange(true, ordering: .acquiringAndReleasing) else { return }
            loop.execute {
                pending.store(false, ordering: .releasing)
                loopBound.value.pump()
            }
        }
        leader.register(ReplicationLeader.Replica(connection: connection, address: executor.clients.record(connection)?.address ?? "",
                                                  listeningPort: 0, state: "wait_bgsave", ackOffset: -1,
                                                  lastAck: DispatchTime.now().uptimeNanoseconds), wake: wake)
        switch start {
        case .resume(let offset):
            write(simple: "+CONTINUE \(leader.replicationId)")
            goOnline(at: offset)
        case .fullCopy:
            sendCopy()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let args = unwrapInboundIn(data).map { String(buffer: $0) }
        guard args.count >= 3, args[0].lowercased() == "replconf" else { return }
        switch args[1].lowercased() {
        case "ack": if let offset = Int64(args[2]) { leader.acknowledge(connection: connection, offset: offset) }
        case "listening-port": if let port = Int(args[2]) { leader.update(connection: connection) { $0.listeningPort = port } }
        default: break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        leader.unregister(connection: connection)
        logger.info("replica disconnected", metadata: ["replica": "\(connection)"])
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { pump() }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Shutdown, or the replica closed its side (the server allows half-closure for ordinary clients).
        if event is DrainEvent || (event as? ChannelEvent) == .inputClosed {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    private func write(simple line: String) {
        guard let context else { return }
        var b = context.channel.allocator.buffer(capacity: line.utf8.count + 2)
        b.writeString(line + "\r\n")
        context.writeAndFlush(wrapOutboundOut(b), promise: nil)
    }

    private func write(frame: [ByteBuffer]) -> EventLoopFuture<Void>? {
        guard let context, !closed else { return nil }
        var b = context.channel.allocator.buffer(capacity: 64 + frame.reduce(0) { $0 + $1.readableBytes })
        ReplicationEncoding.encode(frame, into: &b)
        return context.writeAndFlush(wrapOutboundOut(b))
    }

    private func fail(_ message: String) {
        logger.error("replica feed stopped: \(message)", metadata: ["replica": "\(connection)"])
        context?.close(promise: nil)
    }

    // MARK: Full copy

    private func sendCopy() {
        guard let context else { return }
        let executor = self.executor, leader = self.leader, connection = self.connection
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let loop = context.eventLoop
        DispatchQueue.global().async {
            let catalog = executor.catalog
            // Indexes changed since their last snapshot are saved first, so the copy carries them.
            catalog.saveStaleIndexSnapshots()
            let result = Result { () -> (id: Int, manifest: BackupManifest, offset: Int64) in
                // In the write order: no write is between the checkpoint and the offset.
                try catalog.ordered {
                    let (id, manifest) = try executor.backups.start(catalog: catalog, owner: connection)
                    return (id, manifest, leader.offset)
                }
            }
            loop.execute {
                let feed = loopBound.value
                switch result {
                case .failure(let error): feed.fail("the checkpoint for a full copy failed: \(error)")
                case .success(let copy):
                    feed.logger.info("full copy to a replica", metadata: ["replica": "\(connection)", "offset": "\(copy.offset)",
                                                                          "bytes": "\(copy.manifest.totalBytes)"])
                    leader.update(connection: connection) { $0.state = "send_bulk" }
                    feed.write(simple: "+FULLRESYNC \(leader.replicationId) \(copy.offset)")
                    _ = feed.write(frame: [ByteBuffer(string: "SYNCMANIFEST"), ByteBuffer(string: copy.manifest.text)])
                    feed.sendFile(copy: copy, index: 0, position: 0)
                }
            }
        }
    }

    /// Sends the chunk of file `index` at `position`, then (when written) the next one; then SYNCEND.
    private func sendFile(copy: (id: Int, manifest: BackupManifest, offset: Int64), index: Int, position: Int) {
        guard let context, !closed else { return }
        let files = copy.manifest.files
        if index == files.count {
            executor.backups.end(id: copy.id)
            _ = write(frame: [ByteBuffer(string: "SYNCEND")])
            goOnline(at: copy.offset)
            return
        }
        let file = files[index]
        if position >= file.size && !(file.size == 0 && position == 0) {
            sendFile(copy: copy, index: index + 1, position: 0)
            return
        }
        let executor = self.executor
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let loop = context.eventLoop
        DispatchQueue.global().async {
            let chunk = Result { try executor.backups.read(id: copy.id, file: file.name, offset: position, count: Self.chunkBytes) }
            loop.execute {
                let feed = loopBound.value
                switch chunk {
                case .failure(let error): feed.fail("reading \(file.name) for a full copy failed: \(error)")
                case .success(let bytes):
                    let written = feed.write(frame: [ByteBuffer(string: "SYNCDATA"), ByteBuffer(string: file.name), ByteBuffer(bytes: bytes)])
                    let next = bytes.isEmpty ? file.size : position + bytes.count
                    written?.whenSuccess { loopBound.value.sendFile(copy: copy, index: next >= file.size ? index + 1 : index,
                                                                   position: next >= file.size ? 0 : next) }
                }
            }
        }
    }

    // MARK: Streaming

    private func goOnline(at offset: Int64) {
        sent = offset
        leader.update(connection: connection) {
            $0.state = "online"
            $0.ackOffset = max($0.ackOffset, -1)
        }
        logger.info("replica online", metadata: ["replica": "\(connection)", "offset": "\(offset)"])
        pump()
    }

    /// Sends what the backlog holds past `sent`, while the connection takes it.
    private func pump() {
        guard let context, !closed, let from = sent, context.channel.isWritable else { return }
        guard let pieces = leader.read(from: from, maxBytes: Self.chunkBytes) else {
            fail("the replica needs offset \(from), which the backlog no longer holds (raise repl-backlog-size); it will take a full copy")
            return
        }
        guard !pieces.isEmpty else { return }
        var n: Int64 = 0
        for p in pieces {
            n += Int64(p.readableBytes)
            context.write(wrapOutboundOut(p), promise: nil)
        }
        sent = from + n
        context.flush()
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.execute { loopBound.value.pump() }
    }
}
