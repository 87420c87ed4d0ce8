import Atomics
import LatentProtocol
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Sent down a connection's pipeline when the server shuts down: finish what was received, then close.
public struct DrainEvent: Sendable {}

/// Runs one connection's requests: collects what each read decoded, runs it as one batch on the worker
/// pool (never on the event loop, so a slow search cannot stall other connections), and writes the
/// replies in request order with one flush.
///
/// One batch runs at a time per connection, which keeps pipelined replies in order. Reading stops
/// while too many requests are queued, so a client that never reads replies cannot grow memory.
final class RESPServerHandler: ChannelDuplexHandler {
    typealias InboundIn = [ByteBuffer]
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let executor: CommandExecutor
    private let pools: WorkerPools
    private let session: Session
    private let onShutdown: @Sendable () -> Void
    private let logger: Logger

    // Every field below is touched only on the channel's event loop (handler callbacks and the
    // completion of a batch, which hops back to the loop through NIOLoopBound).
    private var queued: [[ByteBuffer]] = []
    private var running = false
    private var closing = false
    private var protocolError: RESPProtocolError?
    private var readSuppressed = false
    /// Set when the connection is gone: the batch running on the pool stops at its next request
    /// and the queued ones are dropped (a client that pipelines heavy queries and leaves costs nothing more).
    private let cancelled = CancellationFlag()
    /// Bytes of the queued requests' arguments (CLIENT LIST qbuf; client-query-buffer-limit).
    private var queuedBytes = 0
    /// Bytes of replies written to the channel and not yet sent (CLIENT LIST omem; client-output-buffer-limit).
    private var pendingOutputBytes = 0
    /// Since when the unsent replies have been over the soft output limit.
    private var overSoftLimitSince: NIODeadline?
    /// Set once a replica's PSYNC handed the connection to a ReplicaFeedHandler: everything read goes to it.
    private var feeding = false
    /// The next batch runs its first request the ordinary way even if it is PSYNC or WAIT.
    private var bypassConnectionCommand = false

    static let maxBatch = 512
    static let highWater = 4096
    /// A batch stops once its replies reach this many bytes (estimated); the rest waits for the next one,
    /// so unread large replies are bounded by about this plus the channel's high-water mark.
    static let replyBudgetBytes = 4 << 20

    init(executor: CommandExecutor, pools: WorkerPools, session: Session, logger: Logger,
         onShutdown: @escaping @Sendable () -> Void) {
        self.executor = executor
        self.pools = pools
        self.session = session
        self.logger = logger
        self.onShutdown = onShutdown
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if feeding { return context.fireChannelRead(data) }
        guard !closing else { return }
        let request = unwrapInboundIn(data)
        queued.append(request)
        let requestBytes = request.reduce(0) { $0 + $1.readableBytes }
        queuedBytes += requestBytes
        executor.stats.inputBytes.wrappingIncrement(by: requestBytes, ordering: .relaxed)
        let limit = executor.configuration.queryBufferLimit
        if queuedBytes > limit {
            logger.warning("closing client that reached the query buffer limit",
                           metadata: ["client": "\(session.id)", "qbuf": "\(queuedBytes)", "limit": "\(limit)"])
            disconnect(context: context)
        }
    }

    /// Ends the connection now, dropping what it queued (a client over one of its limits).
    private func disconnect(context: ChannelHandlerContext) {
        closing = true
        cancelled.cancel()
        queued.removeAll()
        queuedBytes = 0
        context.close(promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if feeding { return context.fireChannelReadComplete() }
        runNextBatch(context: context)
    }

    func read(context: ChannelHandlerContext) {
        if queued.count >= Self.highWater || closing {
            readSuppressed = true
        } else {
            context.read()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancelled.cancel()
        queued.removeAll()
        queuedBytes = 0
        closing = true
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        // Replies wait in the channel while the client does not read them; the next batch runs only when
        // the outbound buffer has drained below its low-water mark.
        if context.channel.isWritable && !feeding { runNextBatch(context: context) }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let e = error as? RESPProtocolError {
            // Answer what came before the bad frame, then the error, then close (see runNextBatch).
            protocolError = e
            closing = true
            runNextBatch(context: context)
        } else {
            logger.debug("connection error: \(error)")
            context.close(promise: nil)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if feeding { return context.fireUserInboundEventTriggered(event) }
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            // --timeout: nothing received for that long while nothing is in progress (as Redis' timeout).
            if !running && queued.isEmpty {
                logger.info("closing idle connection", metadata: ["client": "\(session.id)"])
                context.close(promise: nil)
            }
            return
        }
        if event is DrainEvent || (event as? ChannelEvent) == .inputClosed {
            closing = true
            runNextBatch(context: context)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    private func runNextBatch(context: ChannelHandlerContext) {
        guard !running, !cancelled.isCancelled else { return }
        if queued.isEmpty {
            if closing { finish(context: context) }
            return
        }
        // Output back-pressure: while the client leaves replies unread, run nothing more for it. Reads
        // stop too once `highWater` requests are queued, so its memory stays bounded.
        guard context.channel.isWritable else { return }
        // PSYNC and WAIT are handled here, alone: a batch stops before one.
        if !bypassConnectionCommand, let special = Self.connectionCommand(queued[0]) {
            let request = queued.removeFirst()
            queuedBytes -= request.reduce(0) { $0 + $1.readableBytes }
            runConnectionCommand(special, request, context: context)
            return
        }
        var take = min(queued.count, Self.maxBatch)
        if let stop = queued.prefix(take).dropFirst(bypassConnectionCommand ? 1 : 0).firstIndex(where: { Self.connectionCommand($0) != nil }) {
            take = stop
        }
        bypassConnectionCommand = false
        let batch = Array(queued.prefix(take))
        queued.removeFirst(take)
        let batchBytes = batch.reduce(0) { $0 + $1.reduce(0) { $0 + $1.readableBytes } }
        let executor = self.executor, session = self.session, cancelled = self.cancelled
        // PING and ECHO touch no collection and take no lock: answered here, they never queue behind
        // the worker pool's searches and writes (a health check measures the server, not its backlog).
        if batch.allSatisfy(CommandExecutor.answersOnEventLoop) {
            let outcomes = executor.execute(batch: batch, session: session)
            var bytes = context.channel.allocator.buffer(capacity: 16 * outcomes.count)
            for outcome in outcomes where outcome.after != .shutdown { outcome.reply.write(into: &bytes, version: outcome.version) }
            queuedBytes -= batchBytes
            deliver(BatchResult(consumed: outcomes.count, after: outcomes.last?.after ?? .none, bytes: bytes), context: context,
                    inline: true)
            return
        }
        running = true
        let allocator = context.channel.allocator
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let pool = batch.contains(where: CommandExecutor.writesByName) ? pools.writes : pools.reads
        pool.runIfActive(eventLoop: context.eventLoop) { () -> BatchResult in
            let outcomes = executor.execute(batch: batch, session: session, isCancelled: { cancelled.isCancelled },
                                            replyBudgetBytes: Self.replyBudgetBytes)
            // Encoded here, on the worker: a large reply never holds up the event loop's other connections.
            var bytes = allocator.buffer(capacity: 256)
            for outcome in outcomes where outcome.after != .shutdown { outcome.reply.write(into: &bytes, version: outcome.version) }
            return BatchResult(consumed: outcomes.count, after: outcomes.last?.after ?? .none, bytes: bytes)
        }.whenComplete { result in
            let (handler, context) = loopBound.value
            handler.running = false
            if handler.cancelled.isCancelled { return }
            switch result {
            case .success(let done):
                // Requests the batch did not reach (reply budget) go back to the front of the queue.
                var ranBytes = batchBytes
                if done.consumed < batch.count && done.after == .none {
                    let rest = batch[done.consumed...]
                    handler.queued.insert(contentsOf: rest, at: 0)
                    ranBytes -= rest.reduce(0) { $0 + $1.reduce(0) { $0 + $1.readableBytes } }
                }
                handler.queuedBytes -= ranBytes
                handler.deliver(done, context: context)
            case .failure(let error):
                handler.logger.error("worker pool refused a batch: \(error)")
                context.close(promise: nil)
            }
        }
    }

    /// "PSYNC" or "WAIT" when a request is one of them (upper-case), from its name alone.
    static func connectionCommand(_ args: [ByteBuffer]) -> String? {
        guard let name = args.first, name.readableBytes == 4 || name.readableBytes == 5 else { return nil }
        let upper = String(decoding: name.readableBytesView.map { $0 & 0xDF }, as: UTF8.self)
        return upper == "PSYNC" || upper == "WAIT" ? upper : nil
    }

    /// WAIT without holding a worker thread (it may wait for seconds); PSYNC hands the connection to a
    /// ReplicaFeedHandler. Inside MULTI, before AUTH or when malformed they take the ordinary path.
    private func runConnectionCommand(_ name: String, _ request: [ByteBuffer], context: ChannelHandlerContext) {
        let parsed = try? CommandParser.parse(request)
        guard session.authenticated, session.transaction == nil, let parsed else {
            queued.insert(request, at: 0)
            queuedBytes += request.reduce(0) { $0 + $1.readableBytes }
            return runOrdinary(context: context)
        }
        let replication = executor.replication
        switch parsed {
        case .wait(let replicas, let timeout):
            if replication.isReplica {
                return reply(.err("WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated."), context: context)
            }
            running = true
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            replication.leader.waitForAcks(replicas: replicas, offset: session.lastWriteOffset, timeoutMillis: timeout, on: context.eventLoop)
                .whenSuccess { count in
                    let (handler, context) = loopBound.value
                    handler.running = false
                    if handler.cancelled.isCancelled { return }
                    handler.reply(.integer(count), context: context)
                }
        case .psync(let id, let offset):
            if replication.isReplica {
                return reply(.err("this server is a replica: replicate from its leader (INFO replication: master_host)"), context: context)
            }
            let start: ReplicaFeedHandler.Start = replication.leader.canContinue(replicationId: id, offset: offset) ? .resume(from: offset) : .fullCopy
            let feed = ReplicaFeedHandler(executor: executor, leader: replication.leader, connection: session.id, start: start, logger: logger)
            do {
                try context.pipeline.syncOperations.addHandler(feed, position: .after(self))
            } catch {
                logger.error("cannot start a replica feed: \(error)")
                return context.close(promise: nil)
            }
            feeding = true
            if session.replicaListeningPort > 0 {
                replication.leader.update(connection: session.id) { [port = session.replicaListeningPort] in $0.listeningPort = port }
            }
            // Requests the replica pipelined after PSYNC (acknowledgements) are the feed's.
            let rest = queued
            queued.removeAll()
            queuedBytes = 0
            for r in rest { context.fireChannelRead(NIOAny(r)) }
        default:
            queued.insert(request, at: 0)
            runOrdinary(context: context)
        }
    }

    /// Runs the queue's next batch the ordinary way (the first request is not treated as PSYNC/WAIT).
    private func runOrdinary(context: ChannelHandlerContext) {
        bypassConnectionCommand = true
        runNextBatch(context: context)
    }

    private func reply(_ value: RESPValue, context: ChannelHandlerContext) {
        var bytes = context.channel.allocator.buffer(capacity: 64)
        value.write(into: &bytes, version: session.protocolVersion)
        deliver(BatchResult(consumed: 1, after: .none, bytes: bytes), context: context, inline: true)
    }

    private struct BatchResult: Sendable {
        var consumed: Int
        var after: AfterReply
        var bytes: ByteBuffer
    }

    /// Sends a batch's replies and starts the next batch; after an `inline` batch the next one starts in
    /// a later event-loop turn, so a long pipeline of PINGs never recurses.
    private func deliver(_ done: BatchResult, context: ChannelHandlerContext, inline: Bool = false) {
        let size = done.bytes.readableBytes
        if size > 0 {
            executor.stats.outputBytes.wrappingIncrement(by: size, ordering: .relaxed)
            pendingOutputBytes += size
            let promise = context.eventLoop.makePromise(of: Void.self)
            let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
            promise.futureResult.whenComplete { _ in
                let handler = loopBound.value
                handler.pendingOutputBytes -= size
                handler.session.record?.setBuffers(output: handler.pendingOutputBytes)
            }
            context.write(wrapOutboundOut(done.bytes), promise: promise)
        }
        session.record?.setBuffers(query: queuedBytes, output: pendingOutputBytes)
        if overOutputLimit(context: context) { return }
        switch done.after {
        case .none: break
        case .close:
            closing = true
            queued.removeAll()
        case .shutdown:
            closing = true
            queued.removeAll()
            onShutdown()
        }
        context.flush()
        if readSuppressed && queued.count < Self.highWater && !closing {
            readSuppressed = false
            context.read()
        }
        if inline {
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            context.eventLoop.execute {
                let (handler, context) = loopBound.value
                handler.runNextBatch(context: context)
            }
        } else {
            runNextBatch(context: context)
        }
    }

    /// client-output-buffer-limit, as Redis applies it to normal clients: over the hard limit at once, or
    /// over the soft limit for the given seconds in a row, the client is disconnected and logged.
    private func overOutputLimit(context: ChannelHandlerContext) -> Bool {
        let limit = executor.configuration.outputBufferLimit
        var reason: String?
        if limit.hard > 0 && pendingOutputBytes > limit.hard {
            reason = "hard"
        } else if limit.soft > 0 && pendingOutputBytes > limit.soft {
            let now = NIODeadline.now()
            let since = overSoftLimitSince ?? now
            if overSoftLimitSince == nil {
                // A client that stopped reading gets no more batches, so look again when its time is up.
                let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                context.eventLoop.scheduleTask(in: .seconds(Int64(limit.softSeconds)) + .milliseconds(10)) {
                    let (handler, context) = loopBound.value
                    if !handler.closing { _ = handler.overOutputLimit(context: context) }
                }
            }
            overSoftLimitSince = since
            if now - since >= .seconds(Int64(limit.softSeconds)) { reason = "soft" }
        } else {
            overSoftLimitSince = nil
        }
        guard let reason else { return false }
        logger.warning("closing client that reached the \(reason) output buffer limit",
                       metadata: ["client": "\(session.id)", "omem": "\(pendingOutputBytes)"])
        disconnect(context: context)
        return true
    }

    private func finish(context: ChannelHandlerContext) {
        if let e = protocolError {
            protocolError = nil
            var bytes = context.channel.allocator.buffer(capacity: 64)
            RESPValue.err(e.description).write(into: &bytes, version: session.protocolVersion)
            context.writeAndFlush(wrapOutboundOut(bytes), promise: nil)
        }
        context.close(promise: nil)
    }
}

/// Set once, from the event loop, when a connection closes; read by the worker running its batch.
/// Guarded by `lock`.
final class CancellationFlag: @unchecked Sendable {
    private let lock = NIOLock()
    private var value = false
    func cancel() { lock.withLock { value = true } }
    var isCancelled: Bool { lock.withLock { value } }
}
