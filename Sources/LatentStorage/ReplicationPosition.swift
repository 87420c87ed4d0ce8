import Foundation

/// Where a replica is in its leader's replication stream: the leader's replication id and the offset of
/// the next stream byte the replica needs. A replica stores it in the `meta` column family in the same
/// batch as the writes it applied (StoreTransaction's `alsoPut`), so after a crash or restart the stored
/// offset matches the stored data exactly and PSYNC resumes from there. docs/replication.md.
public struct ReplicationPosition: Equatable, Sendable {
    public var replicationId: String
    public var offset: Int64

    public init(replicationId: String, offset: Int64) {
        self.replicationId = replicationId
        self.offset = offset
    }

    static let key = Array("replication/position".utf8)

    /// The record to store with a batch: `meta` / `replication/position` = "ID OFFSET".
    public var record: (cf: String, key: [UInt8], value: [UInt8]) {
        (StoreLayout.meta, Self.key, Array("\(replicationId) \(offset)".utf8))
    }

    /// Parses a stored record; nil when it is not "ID OFFSET" with a non-negative offset.
    static func parse(_ bytes: [UInt8]) -> ReplicationPosition? {
        let parts = String(decoding: bytes, as: UTF8.self).split(separator: " ")
        guard parts.count == 2, !parts[0].isEmpty, let offset = Int64(parts[1]), offset >= 0 else { return nil }
        return ReplicationPosition(replicationId: String(parts[0]), offset: offset)
    }
}

extension LatentStore {
    /// The position a replica stored with its last applied writes; nil when none was stored (never a
    /// replica, or a leader). A damaged record reads as none: the replica then asks for a full copy.
    public func replicationPosition() throws -> ReplicationPosition? {
        guard let raw = try db.get(StoreLayout.meta, ReplicationPosition.key) else { return nil }
        return ReplicationPosition.parse(raw)
    }

    /// Stores (or with nil, removes) the replication position on its own, synced.
    public func setReplicationPosition(_ position: ReplicationPosition?) throws {
        let batch = WriteBatch(for: db)
        if let position {
            try batch.put(StoreLayout.meta, ReplicationPosition.key, position.record.value)
        } else {
            try batch.delete(StoreLayout.meta, ReplicationPosition.key)
        }
        try db.write(batch, sync: true)
    }
}
