import Foundation
import LatentEngine
import LatentProtocol

/// Redis' keyspace commands over collections: each collection is a key of type `vectorset`; a name
/// that is not a collection behaves as a missing key.
extension CommandExecutor {
    func runKeyspaceCommand(_ command: Command) throws -> RESPValue? {
        switch command {
        case .del(let keys):
            var n = 0
            for k in keys where try catalog.drop(k) { n += 1 }
            return .integer(n)
        case .exists(let keys):
            return .integer(keys.filter { catalog.collection($0) != nil }.count)
        case .type(let key):
            return .simpleString(catalog.collection(key) == nil ? "none" : "vectorset")
        case .rename(let key, let newKey, let onlyIfAbsent):
            guard catalog.collection(key) != nil else { return .err("no such key") }
            let renamed = try catalog.rename(key, to: newKey, onlyIfAbsent: onlyIfAbsent)
            return onlyIfAbsent ? .integer(renamed ? 1 : 0) : .ok
        case .keys(let pattern):
            return .array(catalog.names.filter { Self.globMatch(pattern, $0) }.map { .bulk($0) })
        case .scan(let cursor, let match, let count, let type):
            // The cursor is a position in the sorted names: a collection present for the whole scan is
            // returned once; one created or dropped meanwhile may or may not be (Redis' guarantee).
            let names = catalog.names
            let start = min(cursor, names.count)
            let end = start + min(count, names.count - start)
            var page = Array(names[start..<end])
            if let match { page = page.filter { Self.globMatch(match, $0) } }
            if let type, type != "vectorset" { page = [] }
            let next = end >= names.count ? 0 : end
            return .array([.bulk(String(next)), .array(page.map { .bulk($0) })])
        case .flush:
            try catalog.dropAll()
            return .ok
        case .expire(let key, let milliseconds, let absolute, let condition):
            guard let c = catalog.collection(key) else { return .integer(0) }
            let now = CollectionCatalog.nowMillis()
            let (when, overflow) = absolute ? (milliseconds, false) : now.addingReportingOverflow(milliseconds)
            if overflow { return .err("invalid expire time in '\(command.name)' command") }
            let current = c.expiresAt
            switch condition {
            case .always: break
            case .nx: if current != nil { return .integer(0) }
            case .xx: if current == nil { return .integer(0) }
            case .gt: if current == nil || when <= current! { return .integer(0) }   // no TTL counts as infinite
            case .lt: if let current, when >= current { return .integer(0) }
            }
            return .integer(try catalog.setExpiry(key, at: when) ? 1 : 0)
        case .ttl(let key, let milliseconds, let absolute):
            guard let c = catalog.collection(key) else { return .integer(-2) }
            guard let when = c.expiresAt else { return .integer(-1) }
            if absolute { return .integer(Int(milliseconds ? when : when / 1000)) }
            let left = max(0, when - CollectionCatalog.nowMillis())
            return .integer(Int(milliseconds ? left : (left + 500) / 1000))
        case .persist(let key):
            guard let c = catalog.collection(key), c.expiresAt != nil else { return .integer(0) }
            return .integer(try catalog.setExpiry(key, at: nil) ? 1 : 0)
        case .memoryUsage(let key):
            guard let c = catalog.collection(key) else { return .null }
            return .integer(c.memoryBytes)
        case .objectEncoding(let key):
            guard let c = catalog.collection(key) else { return .null }
            return .bulk(c.definition.index.kind.rawValue.lowercased())
        default:
            return nil
        }
    }

    /// Redis' glob patterns (`*`, `?`, `[...]`, `\\x`), as KEYS and SCAN MATCH use them.
    static func globMatch(_ pattern: String, _ name: String) -> Bool {
        fnmatch(pattern, name, 0) == 0
    }
}
