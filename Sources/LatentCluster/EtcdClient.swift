import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// What etcd answered or why it could not be reached, in words an operator can act on.
public struct EtcdError: Error, CustomStringConvertible {
    public enum Kind: Sendable { case unreachable, refused, malformed }
    public let kind: Kind
    public let description: String
    init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }
}

/// One key of a range answer.
public struct EtcdKeyValue: Sendable, Equatable {
    public var key: String
    public var value: [UInt8]
    public var modRevision: Int64
    public var lease: Int64
}

/// A client of etcd's v3 API through its JSON gateway (`POST /v3/kv/range` ...), over Foundation's URLSession.
///
/// Why the JSON gateway and not gRPC: the gateway is part of every etcd 3.4+ server and is the same API
/// (the same requests, revisions, leases and transactions); the membership and leadership code needs
/// unary calls only (keep-alives are one request per renewal). gRPC would add grpc-swift-2,
/// swift-protobuf and generated code, several minutes to every clean build, for no capability used here.
/// URLSession ships with the toolchain (libcurl underneath). docs/cluster.md.
///
/// Several endpoints may be given: a call tries each in turn, starting with the last that answered.
/// Thread-safe: `preferred` is guarded by `lock`; the session is thread-safe.
public final class EtcdClient: @unchecked Sendable {
    public let endpoints: [URL]
    private let session: URLSession
    private let lock = NSLock()
    private var preferred = 0
    private let timeout: TimeInterval

    /// `endpoints`: comma-separated URLs, e.g. "http://10.0.0.1:2379,http://10.0.0.2:2379".
    public init(endpoints text: String, timeout: TimeInterval = 2) throws {
        let urls = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !urls.isEmpty else { throw EtcdError(.malformed, "no etcd endpoint given: use e.g. http://127.0.0.1:2379") }
        endpoints = try urls.map { s in
            guard let u = URL(string: s), let scheme = u.scheme, ["http", "https"].contains(scheme), u.host != nil else {
                throw EtcdError(.malformed, "'\(s.prefix(100))' is not an etcd endpoint URL: use http://HOST:PORT")
            }
            return u
        }
        self.timeout = timeout
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = timeout
        session = URLSession(configuration: configuration)
    }

    // MARK: Calls

    /// The value of `key`, nil when absent.
    public func get(_ key: String) throws -> EtcdKeyValue? {
        try range(["key": Self.b64(key)]).first
    }

    /// Every key starting with `prefix`, in key order.
    public func list(prefix: String) throws -> [EtcdKeyValue] {
        try range(["key": Self.b64(prefix), "range_end": Self.b64Bytes(Self.prefixEnd(Array(prefix.utf8)))])
    }

    public func put(_ key: String, _ value: [UInt8], lease: Int64 = 0) throws {
        var body: [String: Any] = ["key": Self.b64(key), "value": Data(value).base64EncodedString()]
        if lease != 0 { body["lease"] = String(lease) }
        _ = try call("/v3/kv/put", body)
    }

    public func delete(_ key: String) throws {
        _ = try call("/v3/kv/deleterange", ["key": Self.b64(key)])
    }

    /// Puts `key` only when it does not exist (a create-revision 0 compare): true when this call created it.
    public func create(_ key: String, _ value: [UInt8], lease: Int64 = 0) throws -> Bool {
        var put: [String: Any] = ["key": Self.b64(key), "value": Data(value).base64EncodedString()]
        if lease != 0 { put["lease"] = String(lease) }
        let answer = try call("/v3/kv/txn", [
            "compare": [["key": Self.b64(key), "target": "CREATE", "result": "EQUAL", "create_revision": "0"]],
            "success": [["request_put": put]],
        ])
        return answer["succeeded"] as? Bool ?? false
    }

    /// A lease of `ttl` seconds; its id.
    public func grantLease(ttl: Int) throws -> Int64 {
        let answer = try call("/v3/lease/grant", ["TTL": String(ttl)])
        guard let id = Self.int64(answer["ID"]), id != 0 else { throw EtcdError(.malformed, "lease grant answered no id") }
        return id
    }

    /// Renews a lease; its remaining TTL, 0 when it no longer exists (expired or revoked).
    public func keepAlive(lease: Int64) throws -> Int {
        let answer = try call("/v3/lease/keepalive", ["ID": String(lease)])
        let result = answer["result"] as? [String: Any] ?? answer
        return Int(Self.int64(result["TTL"]) ?? 0)
    }

    public func revoke(lease: Int64) throws {
        do {
            _ = try call("/v3/lease/revoke", ["ID": String(lease)])
        } catch let e as EtcdError where e.kind == .refused && e.description.contains("not found") {
            // Already gone: what revoking wanted.
        }
    }

    // MARK: Plumbing

    private func range(_ body: [String: Any]) throws -> [EtcdKeyValue] {
        let answer = try call("/v3/kv/range", body)
        return (answer["kvs"] as? [[String: Any]] ?? []).compactMap { kv in
            guard let k = (kv["key"] as? String).flatMap({ Data(base64Encoded: $0) }) else { return nil }
            let v = (kv["value"] as? String).flatMap { Data(base64Encoded: $0) } ?? Data()
            return EtcdKeyValue(key: String(decoding: k, as: UTF8.self), value: Array(v),
                                modRevision: Self.int64(kv["mod_revision"]) ?? 0, lease: Self.int64(kv["lease"]) ?? 0)
        }
    }

    /// POSTs `body` to `path` on the first endpoint that answers; the decoded JSON object.
    func call(_ path: String, _ body: [String: Any]) throws -> [String: Any] {
        let payload = try JSONSerialization.data(withJSONObject: body)
        let start = lock.withLock { preferred }
        var failures: [String] = []
        for i in 0..<endpoints.count {
            let index = (start + i) % endpoints.count
            let url = endpoints[index].appendingPathComponent(path)
            var request = URLRequest(url: url, timeoutInterval: timeout)
            request.httpMethod = "POST"
            request.httpBody = payload
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            let (data, status, error) = send(request)
            if let error {
                failures.append("\(endpoints[index].absoluteString): \(error.localizedDescription)")
                continue
            }
            lock.withLock { preferred = index }
            let object = (try? JSONSerialization.jsonObject(with: data ?? Data())) as? [String: Any]
            guard status == 200, let object else {
                let message = (object?["message"] as? String) ?? (object?["error"] as? String) ?? "HTTP \(status)"
                throw EtcdError(.refused, "etcd refused \(path): \(message)")
            }
            return object
        }
        throw EtcdError(.unreachable, "no etcd endpoint answered (\(failures.joined(separator: "; ")))")
    }

    /// One request, waited for (callers are background threads, never an event loop).
    private func send(_ request: URLRequest) -> (Data?, Int, Error?) {
        let done = DispatchSemaphore(value: 0)
        let box = ResultBox()
        session.dataTask(with: request) { data, response, error in
            box.set(data, (response as? HTTPURLResponse)?.statusCode ?? 0, error)
            done.signal()
        }.resume()
        done.wait()
        return box.get()
    }

    /// Guarded by `lock`: written once by the task's completion, read after the semaphore.
    private final class ResultBox: @unchecked Sendable {
        private let lock = NSLock()
        private var value: (Data?, Int, Error?) = (nil, 0, nil)
        func set(_ d: Data?, _ s: Int, _ e: Error?) { lock.withLock { value = (d, s, e) } }
        func get() -> (Data?, Int, Error?) { lock.withLock { value } }
    }

    static func b64(_ s: String) -> String { Data(s.utf8).base64EncodedString() }
    static func b64Bytes(_ b: [UInt8]) -> String { Data(b).base64EncodedString() }

    /// The smallest key after every key with `prefix`: the prefix with its last byte below 0xff increased.
    static func prefixEnd(_ prefix: [UInt8]) -> [UInt8] {
        var end = prefix
        while let last = end.last {
            if last < 0xff {
                end[end.count - 1] = last + 1
                return end
            }
            end.removeLast()
        }
        return [0]  // every key (etcd's "\0" range end)
    }

    /// etcd's JSON gateway writes int64 fields as strings.
    static func int64(_ v: Any?) -> Int64? {
        if let s = v as? String { return Int64(s) }
        if let n = v as? NSNumber { return n.int64Value }
        return nil
    }
}
