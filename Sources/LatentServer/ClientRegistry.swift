import Foundation
import NIOConcurrencyHelpers

/// What CLIENT LIST, CLIENT INFO and INFO clients report about one connection. Written by the
/// connection's handler (on its event loop: buffer sizes) and by its requests (on a worker: name, last
/// command); every field is guarded by `lock`.
public final class ClientRecord: @unchecked Sendable {
    public let id: Int
    public let address: String
    public let localAddress: String
    public let created = Date()
    private let lock = NIOLock()
    private var _name = ""
    private var _libName = ""
    private var _libVersion = ""
    private var _lastCommand = "NULL"
    private var _lastActive = Date()
    private var _queryBufferBytes = 0
    private var _outputBytes = 0
    private var _peakBytes = 0
    /// Closes the connection (CLIENT KILL); safe from any thread.
    let close: @Sendable () -> Void

    init(id: Int, address: String, localAddress: String, close: @escaping @Sendable () -> Void) {
        self.id = id
        self.address = address
        self.localAddress = localAddress
        self.close = close
    }

    public var name: String {
        get { lock.withLock { _name } }
        set { lock.withLock { _name = newValue } }
    }

    func setLibrary(name: String?, version: String?) {
        lock.withLock {
            if let name { _libName = name }
            if let version { _libVersion = version }
        }
    }

    func noteCommand(_ command: String) {
        lock.withLock {
            _lastCommand = command
            _lastActive = Date()
        }
    }

    /// Bytes of requests received and not yet run (`qbuf`), and of replies not yet sent (`omem`).
    func setBuffers(query: Int? = nil, output: Int? = nil) {
        lock.withLock {
            if let query { _queryBufferBytes = query }
            if let output { _outputBytes = output }
            _peakBytes = max(_peakBytes, _queryBufferBytes + _outputBytes)
        }
    }

    var buffers: (query: Int, output: Int, peak: Int) { lock.withLock { (_queryBufferBytes, _outputBytes, _peakBytes) } }

    /// One CLIENT LIST line, with Redis' field names (fields latentd has no notion of are Redis' defaults).
    func listLine(now: Date = Date()) -> String {
        lock.withLock {
            let age = Int(now.timeIntervalSince(created))
            let idle = Int(now.timeIntervalSince(_lastActive))
            return "id=\(id) addr=\(address) laddr=\(localAddress) fd=-1 name=\(_name) age=\(age) idle=\(idle) flags=N db=0 "
                + "sub=0 psub=0 ssub=0 multi=-1 watch=0 qbuf=\(_queryBufferBytes) qbuf-free=0 argv-mem=0 multi-mem=0 "
                + "rbs=0 rbp=0 obl=0 oll=0 omem=\(_outputBytes) tot-mem=\(_queryBufferBytes + _outputBytes) events=r "
                + "cmd=\(_lastCommand) user=default redir=-1 resp=2 lib-name=\(_libName) lib-ver=\(_libVersion)"
        }
    }
}

/// Every open connection's record, by client id. Guarded by its lock box.
public final class ClientRegistry: @unchecked Sendable {
    private let records = NIOLockedValueBox([Int: ClientRecord]())

    public init() {}

    func register(_ record: ClientRecord) { records.withLockedValue { $0[record.id] = record } }
    func unregister(_ id: Int) { records.withLockedValue { $0[id] = nil } }
    func record(_ id: Int) -> ClientRecord? { records.withLockedValue { $0[id] } }
    var all: [ClientRecord] { records.withLockedValue { $0.values.sorted { $0.id < $1.id } } }
}
