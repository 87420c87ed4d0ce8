import Foundation
import LatentEngine
import LatentProtocol
import LatentStorage
import NIOConcurrencyHelpers

/// Online backups (`latentctl backup --host`): BACKUP START takes a RocksDB checkpoint of the running
/// store (a consistent point-in-time copy made of hard links, in `<data-dir>/.latentdb-backup-N`) and
/// replies with its manifest; BACKUP READ streams its files in chunks; BACKUP END (or the connection
/// closing) removes it. Writes go on during the backup: the checkpoint is the store as of BACKUP START,
/// so every write acknowledged before it is in the backup and none is torn.
/// Guarding: `state` is a NIOLockedValueBox; `directory` is immutable.
public final class BackupSessions: @unchecked Sendable {
    struct Session {
        let path: String
        let manifest: BackupManifest
        let owner: Int
    }

    /// Backups open at once: each holds a checkpoint (hard links that keep deleted SST files on disk).
    public static let maxOpen = 4
    /// The largest chunk one BACKUP READ returns.
    public static let maxChunk = 8 << 20
    static let prefix = ".latentdb-backup-"

    private let directory: String
    private let state = NIOLockedValueBox((next: 1, sessions: [Int: Session]()))

    /// Checkpoints a stopped server left are removed when the catalog opens (LatentStore.removeLeftoverScratch).
    init(directory: String) { self.directory = directory }

    func start(catalog: CollectionCatalog, owner: Int) throws -> (id: Int, manifest: BackupManifest) {
        let id: Int? = state.withLockedValue { s in
            guard s.sessions.count < Self.maxOpen else { return nil }
            defer { s.next += 1 }
            return s.next
        }
        guard let id else {
            throw CommandError.syntax("\(Self.maxOpen) backups are already open: finish one with BACKUP END id first")
        }
        let path = directory + "/" + Self.prefix + String(id)
        do {
            try catalog.checkpoint(to: path)
            let manifest = try BackupManifest.of(directory: path)
            state.withLockedValue { $0.sessions[id] = Session(path: path, manifest: manifest, owner: owner) }
            return (id, manifest)
        } catch {
            try? FileManager.default.removeItem(atPath: path)
            throw error
        }
    }

    func read(id: Int, file: String, offset: Int, count: Int) throws -> [UInt8] {
        guard let session = state.withLockedValue({ $0.sessions[id] }) else {
            throw CommandError.syntax("no backup \(id) is open on this server: start one with BACKUP START")
        }
        guard let entry = session.manifest.files.first(where: { $0.name == file }) else {
            throw CommandError.syntax("backup \(id) has no file '\(file.prefix(64))'")
        }
        guard offset >= 0, offset <= entry.size else { throw CommandError.syntax("offset \(offset) is beyond \(file)'s \(entry.size) bytes") }
        let n = min(count, entry.size - offset, Self.maxChunk)
        guard let handle = FileHandle(forReadingAtPath: session.path + "/" + file) else {
            throw CommandError.syntax("backup \(id): \(file) cannot be read")
        }
        defer { try? handle.close() }
        try handle.seek(toOffset: UInt64(offset))
        return Array(try handle.read(upToCount: n) ?? Data())
    }

    /// Ends a backup; false when it was not open.
    @discardableResult
    func end(id: Int) -> Bool {
        guard let session = state.withLockedValue({ $0.sessions.removeValue(forKey: id) }) else { return false }
        try? FileManager.default.removeItem(atPath: session.path)
        return true
    }

    /// Ends every backup a connection started (it closed).
    func endAll(owner: Int) {
        let ids = state.withLockedValue { $0.sessions.filter { $0.value.owner == owner }.map(\.key) }
        for id in ids { end(id: id) }
    }

    var openCount: Int { state.withLockedValue { $0.sessions.count } }
}

extension CommandExecutor {
    func backup(_ request: BackupRequest, session: Session) throws -> RESPValue {
        switch request {
        case .start:
            let (id, manifest) = try backups.start(catalog: catalog, owner: session.id)
            return .map([("id", .integer(id)),
                         ("files", .array(manifest.files.map { .array([.bulk($0.name), .integer($0.size), .bulk(String(format: "%08x", $0.crc32))]) }))])
        case .read(let id, let file, let offset, let count):
            return .bulk(bytes: try backups.read(id: id, file: file, offset: offset, count: count))
        case .end(let id):
            return backups.end(id: id) ? .ok : .err("no backup \(id) is open on this server")
        }
    }
}
