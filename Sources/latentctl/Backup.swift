import ArgumentParser
import Foundation
import LatentStorage

/// `latentctl backup`: a consistent copy of a store with a checksummed manifest, from a running server
/// (`--host`: BACKUP START / READ / END over its port) or from a stopped one's directory (`--data-dir`).
struct Backup: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Back up a store, online from a running latentd (--host) or offline from a data directory (--data-dir).")

    @Option(help: "Host of a running latentd (online backup).") var host: String?
    @Option(help: "Its port.") var port = 7379
    @Option(help: "The data directory of a stopped latentd (offline backup).") var dataDir: String?
    @Argument(help: "Where to write the backup: a new or empty directory.") var out: String

    func validate() throws {
        guard (host == nil) != (dataDir == nil) else { throw ValidationError("give either --host (online) or --data-dir (offline)") }
    }

    func run() throws {
        let fm = FileManager.default
        if fm.fileExists(atPath: out), !((try? fm.contentsOfDirectory(atPath: out)) ?? []).isEmpty {
            throw Failure("latentctl backup: \(out) exists and is not empty: choose a new directory")
        }
        // Written to a sibling first and renamed at the end: a backup directory is complete or absent.
        let partial = (out as NSString).standardizingPath + ".partial"
        try? fm.removeItem(atPath: partial)
        do {
            if let dataDir {
                let store = try LatentStore(directory: dataDir)
                defer { store.close() }
                try store.db.checkpoint(to: partial)
            } else if let host {
                try fm.createDirectory(atPath: partial, withIntermediateDirectories: true)
                try download(host: host, into: partial)
            }
            let manifest = try StoreBackup.seal(partial)
            if fm.fileExists(atPath: out) { try fm.removeItem(atPath: out) }
            try fm.moveItem(atPath: partial, toPath: out)
            print("backup written to \(out): \(manifest.files.count) files, \(manifest.totalBytes) bytes, manifest \(BackupManifest.fileName)")
        } catch let f as Failure {
            try? fm.removeItem(atPath: partial)
            throw f
        } catch {
            try? fm.removeItem(atPath: partial)
            throw Failure("latentctl backup: \(error)")
        }
    }

    /// Streams the server's checkpoint file by file, checking each file's CRC-32 against the server's
    /// manifest as it arrives.
    private func download(host: String, into directory: String) throws {
        let connection = try RESPConnection(host: host, port: port)
        guard case .array(let start?) = try connection.call(["BACKUP", "START"]), start.count == 4,
              case .integer(let id) = start[1], case .array(let files?) = start[3] else {
            throw Failure("latentctl backup: the server did not start a backup (is it a latentd with BACKUP?)")
        }
        var entries: [BackupManifest.File] = []
        for f in files {
            guard case .array(let parts?) = f, parts.count == 3, case .bulk(let name?) = parts[0], case .integer(let size) = parts[1],
                  case .bulk(let crcText?) = parts[2], let crc = UInt32(String(decoding: crcText, as: UTF8.self), radix: 16) else {
                throw Failure("latentctl backup: malformed file entry in the server's manifest")
            }
            let fileName = String(decoding: name, as: UTF8.self)
            guard !fileName.contains("/"), !fileName.hasPrefix(".") else { throw Failure("latentctl backup: refusing file name '\(fileName)'") }
            entries.append(.init(name: fileName, size: size, crc32: crc))
        }
        let total = entries.reduce(0) { $0 + $1.size }
        let bar = ProgressBar(title: "backup", total: total)
        bar.unit = "bytes"
        var done = 0
        for entry in entries {
            let path = directory + "/" + entry.name
            FileManager.default.createFile(atPath: path, contents: nil)
            guard let handle = FileHandle(forWritingAtPath: path) else { throw Failure("latentctl backup: cannot write \(path)") }
            defer { try? handle.close() }
            var offset = 0, crc = BackupManifest.initialCRC
            while offset < entry.size {
                let reply = try connection.call(["BACKUP", "READ", String(id), entry.name, String(offset), String(4 << 20)])
                guard case .bulk(let chunk?) = reply, !chunk.isEmpty else {
                    throw Failure("latentctl backup: reading \(entry.name) at \(offset) failed: \(reply)")
                }
                try handle.write(contentsOf: chunk)
                crc = BackupManifest.update(crc, chunk)
                offset += chunk.count
                done += chunk.count
                bar.update(fraction: total > 0 ? Double(done) / Double(total) : 1)
            }
            guard crc == entry.crc32 else { throw Failure("latentctl backup: \(entry.name) arrived damaged (checksum mismatch)") }
        }
        bar.finish()
        _ = try connection.call(["BACKUP", "END", String(id)])
    }
}

/// `latentctl restore`: checks every file of a backup against its manifest and, only if all match,
/// places it as a data directory (all or nothing).
struct Restore: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Restore a backup into a new or empty data directory, after checking every file's checksum.")

    @Argument(help: "The backup directory (written by latentctl backup).") var backup: String
    @Option(help: "The data directory to create (new or empty).") var dataDir: String

    func run() throws {
        do {
            try StoreBackup.restore(backup, to: dataDir) { done, total in
                if done == total || done % 10 == 0 { print("restore: \(done)/\(total) files") }
            }
        } catch {
            throw Failure("latentctl restore: \(error)")
        }
        print("restored \(backup) into \(dataDir): start latentd with --data-dir \(dataDir)")
    }
}
