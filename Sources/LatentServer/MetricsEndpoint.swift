import NIOCore
import NIOHTTP1
import NIOPosix

/// `--metrics-port`: a small HTTP/1.1 server answering `GET /metrics` with Prometheus' text format
/// (ServerMetrics) and 404 for anything else. The exposition is built on the event loop: it reads
/// counters and a handful of figures per collection (each collection's VINFO under its read lock), and
/// Prometheus asks every few seconds, so handing it to the worker pool would buy nothing.
final class MetricsHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let metrics: ServerMetrics
    private let executor: CommandExecutor
    private var head: HTTPRequestHead?

    init(metrics: ServerMetrics, executor: CommandExecutor) {
        self.metrics = metrics
        self.executor = executor
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h): head = h
        case .body: break
        case .end:
            guard let head else { return }
            self.head = nil
            let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
            let found = head.method == .GET && path == "/metrics"
            let body: [UInt8] = found ? metrics.exposition(executor: executor)
                : Array("not found: latentd serves GET /metrics\n".utf8)
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: found ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain")
            headers.add(name: "Content-Length", value: String(body.count))
            if !head.isKeepAlive { headers.add(name: "Connection", value: "close") }
            let status: HTTPResponseStatus = found ? .ok : (head.method == .GET ? .notFound : .methodNotAllowed)
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
            let keepAlive = head.isKeepAlive
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
                if !keepAlive { context.close(promise: nil) }
            }
        }
    }
}
