import CZlib
import Foundation

/// A backup of a store: a directory holding a RocksDB checkpoint's files and `MANIFEST.latentdb`, which
/// lists every file with its size and CRC-32 (zlib's). Restore checks every file against the manifest
/// before anything is placed in the target, and places it with one rename, so a restore is all or nothing.
public struct BackupManifest: Equatable, Sendable {
    public struct File: Equatable, Sendable {
        public let name: String
        public let size: Int
        public let crc32: UInt32
        public init(name: String, size: Int, crc32: UInt32) {
            self.name = name
            self.size = size
            self.crc32 = crc32
        }
    }

    public static let fileName = "MANIFEST.latentdb"
    static let header = "latentdb-backup 1"
    public var files: [File]

    public init(files: [File]) { self.files = files }

    public var totalBytes: Int { files.reduce(0) { $0 + $1.size } }

    /// The manifest of the regular files in `directory` (not the manifest itself), by name.
    public static func of(directory: String) throws -> BackupManifest {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0 != fileName }.sorted()
        return BackupManifest(files: try names.map { name in
            let (size, crc) = try checksum(of: directory + "/" + name)
            return File(name: name, size: size, crc32: crc)
        })
    }

    /// Size and CRC-32 of a file, read in 1 MiB chunks.
    public static func checksum(of path: String) throws -> (size: Int, crc32: UInt32) {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw StorageError(.rocksdb, "cannot read \(path)") }
        defer { try? handle.close() }
        var crc = initialCRC, size = 0
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            crc = update(crc, chunk)
            size += chunk.count
        }
        return (size, crc)
    }

    /// CRC-32 of `bytes` continued from `crc` (start from `BackupManifest.initialCRC`).
    public static func update(_ crc: UInt32, _ bytes: some DataProtocol) -> UInt32 {
        var c = UInt(crc)
        for region in bytes.regions {
            region.withUnsafeBytes { raw in
                // Invariant: raw is one contiguous region of `bytes`, alive for this call; zlib takes at
                // most UInt32.max bytes per call, so larger regions go in pieces.
                var offset = 0
                while offset < raw.count {
                    let n = min(raw.count - offset, Int(UInt32.max))
                    c = CZlib.crc32(c, raw.baseAddress!.advanced(by: offset).assumingMemoryBound(to: Bytef.self), uInt(n))
                    offset += n
                }
            }
        }
        return UInt32(truncatingIfNeeded: c)
    }

    public static var initialCRC: UInt32 { UInt32(CZlib.crc32(0, nil, 0)) }

    public var text: String {
        ([BackupManifest.header] + files.map { "\($0.name) \($0.size) \(String(format: "%08x", $0.crc32))" }).joined(separator: "\n") + "\n"
    }

    public static func parse(_ text: String) throws -> BackupManifest {
        var lines = text.split(separator: "\n").map(String.init)
        guard lines.first == header else { throw StorageError(.damaged, "\(fileName) does not start with '\(header)'") }
        lines.removeFirst()
        return BackupManifest(files: try lines.enumerated().map { i, line in
            let parts = line.split(separator: " ").map(String.init)
            guard parts.count == 3, !parts[0].contains("/"), let size = Int(parts[1]), size >= 0, let crc = UInt32(parts[2], radix: 16) else {
                throw StorageError(.damaged, "\(fileName) line \(i + 2) is not 'name size crc32': '\(line.prefix(80))'")
            }
            return File(name: parts[0], size: size, crc32: crc)
        })
    }
}

public enum StoreBackup {
    /// Writes `MANIFEST.latentdb` for the files already in `directory` (a checkpoint, or files received).
    @discardableResult
    public static func seal(_ directory: String) throws -> BackupManifest {
        let manifest = try BackupManifest.of(directory: directory)
        try manifest.text.write(toFile: directory + "/" + BackupManifest.fileName, atomically: true, encoding: .utf8)
        return manifest
    }

    /// The manifest of a backup directory.
    public static func manifest(of backup: String) throws -> BackupManifest {
        let text: String
        do {
            text = try String(contentsOfFile: backup + "/" + BackupManifest.fileName, encoding: .utf8)
        } catch {
            throw StorageError(.notAStore, "\(backup) is not a LatentDB backup: no readable \(BackupManifest.fileName)")
        }
        return try BackupManifest.parse(text)
    }

    /// Checks every file of a backup against its manifest; the problems in words (empty: intact).
    public static func check(_ backup: String) throws -> [String] {
        try check(backup, against: try manifest(of: backup))
    }

    static func check(_ backup: String, against manifest: BackupManifest) throws -> [String] {
        var problems: [String] = []
        for f in manifest.files {
            let path = backup + "/" + f.name
            guard FileManager.default.fileExists(atPath: path) else { problems.append("\(f.name) is missing"); continue }
            let (size, crc) = try BackupManifest.checksum(of: path)
            if size != f.size {
                problems.append("\(f.name) has \(size) bytes, the manifest says \(f.size)")
            } else if crc != f.crc32 {
                problems.append("\(f.name) fails its checksum (crc32 \(String(format: "%08x", crc)), the manifest says \(String(format: "%08x", f.crc32)))")
            }
        }
        return problems
    }

    /// Restores `backup` into `target` (which must not exist, or be empty): every file is checked first;
    /// the files are copied to a sibling directory and renamed into place, so `target` either does not
    /// change or holds the whole backup.
    public static func restore(_ backup: String, to target: String, progress: (Int, Int) -> Void = { _, _ in }) throws {
        let manifest = try manifest(of: backup)
        let problems = try check(backup, against: manifest)
        guard problems.isEmpty else {
            throw StorageError(.damaged, "backup \(backup) is damaged, nothing was restored: " + problems.joined(separator: "; "))
        }
        let fm = FileManager.default
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: target, isDirectory: &isDir) {
            guard isDir.boolValue, (try fm.contentsOfDirectory(atPath: target)).isEmpty else {
                throw StorageError(.notAStore, "\(target) exists and is not empty: restore into a new or empty directory")
            }
        }
        let staging = (target as NSString).standardizingPath + ".restoring-\(ProcessInfo.processInfo.processIdentifier)"
        try? fm.removeItem(atPath: staging)
        try fm.createDirectory(atPath: staging, withIntermediateDirectories: true)
        do {
            for (i, f) in manifest.files.enumerated() {
                try fm.copyItem(atPath: backup + "/" + f.name, toPath: staging + "/" + f.name)
                progress(i + 1, manifest.files.count)
            }
            if fm.fileExists(atPath: target) { try fm.removeItem(atPath: target) } // empty, checked above
            try fm.moveItem(atPath: staging, toPath: target)
        } catch {
            try? fm.removeItem(atPath: staging)
            throw error
        }
    }
}

/// A backup put in place of a closed store's files (a replica's full copy from its leader): the replaced
/// files wait in `<dir>/.latentdb-replaced` until the new store opened (`commit`) or failed to
/// (`rollback` puts them back).
public struct InstalledBackup {
    public let directory: String
    let replaced: String
    let installed: [String]

    public static let replacedName = ".latentdb-replaced"

    /// Checks `staging` against its manifest, moves the store files of `directory` aside (entries whose
    /// names start with ".latentdb" stay: scratch directories) and moves the backup's files in.
    public static func install(_ staging: String, into directory: String) throws -> InstalledBackup {
        let manifest = try StoreBackup.manifest(of: staging)
        let problems = try StoreBackup.check(staging, against: manifest)
        guard problems.isEmpty else {
            throw StorageError(.damaged, "the copy in \(staging) is damaged: " + problems.joined(separator: "; "))
        }
        let fm = FileManager.default
        let replaced = directory + "/" + replacedName
        try? fm.removeItem(atPath: replaced)
        try fm.createDirectory(atPath: replaced, withIntermediateDirectories: true)
        for name in try fm.contentsOfDirectory(atPath: directory) where !name.hasPrefix(".latentdb") {
            try fm.moveItem(atPath: directory + "/" + name, toPath: replaced + "/" + name)
        }
        var installed: [String] = []
        for f in manifest.files {
            try fm.moveItem(atPath: staging + "/" + f.name, toPath: directory + "/" + f.name)
            installed.append(f.name)
        }
        try? fm.removeItem(atPath: staging)
        return InstalledBackup(directory: directory, replaced: replaced, installed: installed)
    }

    /// Before opening `directory`: when a replacement stopped between moving the store's files aside and
    /// moving the copy in (no CURRENT file), the set-aside files go back. Returns what was done, if anything.
    /// A running server always has CURRENT, so this never touches a directory in use.
    public static func recoverInterrupted(in directory: String) throws -> String? {
        let fm = FileManager.default
        let replaced = directory + "/" + replacedName
        guard fm.fileExists(atPath: replaced), !fm.fileExists(atPath: directory + "/CURRENT") else { return nil }
        for name in try fm.contentsOfDirectory(atPath: directory) where !name.hasPrefix(".latentdb") {
            try fm.removeItem(atPath: directory + "/" + name)
        }
        let names = try fm.contentsOfDirectory(atPath: replaced)
        for name in names { try fm.moveItem(atPath: replaced + "/" + name, toPath: directory + "/" + name) }
        try fm.removeItem(atPath: replaced)
        return "put back \(names.count) files of the store a replica's interrupted copy was replacing"
    }

    /// The new store opened: the replaced files are deleted.
    public func commit() { try? FileManager.default.removeItem(atPath: replaced) }

    /// The new store did not open: its files are removed and the replaced ones put back.
    public func rollback() throws {
        let fm = FileManager.default
        for name in try fm.contentsOfDirectory(atPath: directory) where !name.hasPrefix(".latentdb") {
            try fm.removeItem(atPath: directory + "/" + name)
        }
        for name in try fm.contentsOfDirectory(atPath: replaced) {
            try fm.moveItem(atPath: replaced + "/" + name, toPath: directory + "/" + name)
        }
        try fm.removeItem(atPath: replaced)
    }
}
