import Foundation
#if canImport(Glibc)
import Glibc
#endif

struct ClientError: Error, CustomStringConvertible {
    let description: String
}

/// A reply as the tool needs it: enough of RESP2 to check pipelined answers.
enum Reply: Equatable {
    case simple(String), error(String), integer(Int), bulk([UInt8]?), array([Reply]?)
}

/// A blocking RESP2 connection over a TCP socket, for pipelined requests from one thread.
final class RESPConnection {
    private let fd: Int32
    private var readBuffer: [UInt8] = []
    private var readPosition = 0

    init(host: String, port: Int) throws {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &result) == 0, let info = result else {
            throw ClientError(description: "cannot resolve \(host)")
        }
        defer { freeaddrinfo(result) }
        fd = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
        guard fd >= 0, connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 else {
            throw ClientError(description: "cannot connect to \(host):\(port): \(String(cString: strerror(errno)))")
        }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Makes a read or write that waits longer than `seconds` fail instead of blocking (a node that
    /// accepts connections but does not answer, e.g. a stopped process).
    func setTimeout(seconds: Int) {
        var tv = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    /// Appends one request, encoded as a RESP array of bulk strings, to `out`.
    static func encode(_ args: [[UInt8]], into out: inout [UInt8]) {
        out.append(contentsOf: Array("*\(args.count)\r\n".utf8))
        for a in args {
            out.append(contentsOf: Array("$\(a.count)\r\n".utf8))
            out.append(contentsOf: a)
            out.append(contentsOf: [13, 10])
        }
    }

    func send(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw ClientError(description: "send failed: \(String(cString: strerror(errno)))") }
            sent += n
        }
    }

    func call(_ args: [String]) throws -> Reply {
        var out: [UInt8] = []
        RESPConnection.encode(args.map { Array($0.utf8) }, into: &out)
        try send(out)
        return try readReply()
    }

    private func fill() throws {
        if readPosition > 0 && readPosition == readBuffer.count {
            readBuffer.removeAll(keepingCapacity: true)
            readPosition = 0
        }
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
        guard n > 0 else { throw ClientError(description: "connection closed by the server") }
        readBuffer.append(contentsOf: chunk[0..<n])
    }

    private func line() throws -> [UInt8] {
        while true {
            if let cr = readBuffer[readPosition...].firstIndex(of: 13), cr + 1 < readBuffer.count {
                let l = Array(readBuffer[readPosition..<cr])
                readPosition = cr + 2
                return l
            }
            try fill()
        }
    }

    func readReply() throws -> Reply {
        let l = try line()
        guard let type = l.first else { throw ClientError(description: "empty reply line") }
        let rest = String(decoding: l.dropFirst(), as: UTF8.self)
        switch type {
        case UInt8(ascii: "+"): return .simple(rest)
        case UInt8(ascii: "-"): return .error(rest)
        case UInt8(ascii: ":"): return .integer(Int(rest) ?? 0)
        case UInt8(ascii: "$"):
            let n = Int(rest) ?? -1
            if n < 0 { return .bulk(nil) }
            while readBuffer.count - readPosition < n + 2 { try fill() }
            let data = Array(readBuffer[readPosition..<(readPosition + n)])
            readPosition += n + 2
            return .bulk(data)
        case UInt8(ascii: "*"):
            let n = Int(rest) ?? -1
            if n < 0 { return .array(nil) }
            return .array(try (0..<n).map { _ in try readReply() })
        default:
            throw ClientError(description: "unexpected reply line '\(String(decoding: l, as: UTF8.self))'")
        }
    }
}

extension RESPConnection {
    /// Sends requests 0..<count from `connections` connections at once, `pipeline` in flight on each;
    /// `request(i)` builds request i and `reply(i, r)` receives its reply (from any thread). Returns how
    /// many connections failed (each failure is printed).
    static func runPipelined(host: String, port: Int, connections: Int, pipeline: Int, count: Int,
                             request: (Int) -> [[UInt8]], reply: (Int, Reply) -> Void) -> Int {
        let next = Counter(), failed = Counter()
        DispatchQueue.concurrentPerform(iterations: connections) { _ in
            do {
                let conn = try RESPConnection(host: host, port: port)
                while true {
                    let first = next.fetchAdd(pipeline)
                    if first >= count { break }
                    let last = min(count, first + pipeline)
                    var out: [UInt8] = []
                    for i in first..<last { encode(request(i), into: &out) }
                    try conn.send(out)
                    for i in first..<last { reply(i, try conn.readReply()) }
                }
            } catch {
                print("connection failed: \(error)")
                failed.add(1)
            }
        }
        return failed.value
    }
}
