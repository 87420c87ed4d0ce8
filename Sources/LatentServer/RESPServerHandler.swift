import LatentProtocol
import Logging
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
    typealias OutboundIn = RESPValue
    typealias OutboundOut = RESPValue

    private let executor: CommandExecutor
    private let pool: NIOThreadPool
    private let session: Session
    private let onShutdown: @Sendable () -> Void
    private let logger: Logger

    private var queued: [[ByteBuffer]] = []
    private var running = false
    private var closing = false
    private var protocolError: RESPProtocolError?
    private var readSuppressed = false

    static let maxBatch = 512
    static let highWater = 4096

    init(executor: CommandExecutor, pool: NIOThreadPool, session: Session, logger: Logger,
         onShutdown: @escaping @Sendable () -> Void) {
        self.executor = executor
        self.pool = pool
        self.session = session
        self.logger = logger
        self.onShutdown = onShutdown
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        queued.append(unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        runNextBatch(context: context)
    }

    func read(context: ChannelHandlerContext) {
        if queued.count >= Self.highWater || closing {
            readSuppressed = true
        } else {
            context.read()
        }
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
        if event is DrainEvent || (event as? ChannelEvent) == .inputClosed {
            closing = true
            runNextBatch(context: context)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    private func runNextBatch(context: ChannelHandlerContext) {
        guard !running else { return }
        if queued.isEmpty {
            if closing { finish(context: context) }
            return
        }
        let take = min(queued.count, Self.maxBatch)
        let batch = Array(queued.prefix(take))
        queued.removeFirst(take)
        running = true
        let executor = self.executor, session = self.session
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        pool.runIfActive(eventLoop: context.eventLoop) {
            executor.execute(batch: batch, session: session)
        }.whenComplete { result in
            let (handler, context) = loopBound.value
            handler.running = false
            switch result {
            case .success(let outcomes):
                handler.deliver(outcomes, context: context)
            case .failure(let error):
                handler.logger.error("worker pool refused a batch: \(error)")
                context.close(promise: nil)
            }
        }
    }

    private func deliver(_ outcomes: [Outcome], context: ChannelHandlerContext) {
        for outcome in outcomes {
            switch outcome.after {
            case .none:
                context.write(wrapOutboundOut(outcome.reply), promise: nil)
            case .close:
                context.write(wrapOutboundOut(outcome.reply), promise: nil)
                closing = true
                queued.removeAll()
            case .shutdown:
                closing = true
                queued.removeAll()
                onShutdown()
            }
        }
        context.flush()
        if readSuppressed && queued.count < Self.highWater && !closing {
            readSuppressed = false
            context.read()
        }
        runNextBatch(context: context)
    }

    private func finish(context: ChannelHandlerContext) {
        if let e = protocolError {
            protocolError = nil
            context.writeAndFlush(wrapOutboundOut(.err(e.description)), promise: nil)
        }
        context.close(promise: nil)
    }
}
