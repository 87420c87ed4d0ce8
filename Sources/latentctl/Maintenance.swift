import ArgumentParser
import Foundation
import LatentEngine
import LatentIndex
import LatentStorage
import Logging

/// `latentctl info`: what a data directory holds, without starting a server.
struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the collections of a data directory, their sizes and index states.")

    @Option(help: "The latentd data directory.") var dataDir = "./data"

    func run() throws {
        let summaries: [CollectionSummary]
        do {
            summaries = try CollectionCatalog.summaries(directory: dataDir)
        } catch {
            throw Failure("latentctl: \(error)")
        }
        if summaries.isEmpty { print("\(dataDir): no collections") }
        func cell(_ s: String, _ width: Int, left: Bool = false) -> String {
            let pad = String(repeating: " ", count: max(0, width - s.count))
            return left ? s + pad : pad + s
        }
        print(cell("name", 24, left: true) + cell("dim", 6) + "  " + cell("metric", 7, left: true) + cell("size", 10)
              + "  " + cell("index", 6, left: true) + "snapshot")
        for s in summaries {
            let snapshot = s.index.kind == .flat ? "- (exact search)" : s.snapshotBytes == 0 ? "none (built at start)"
                : "\(s.snapshotBytes) bytes, \(s.snapshotValid ? "checksum ok" : "CORRUPT (rebuilt at start)")"
            print(cell(s.name, 24, left: true) + cell(String(s.dimension), 6) + "  " + cell(s.metric.rawValue, 7, left: true)
                  + cell(String(s.size), 10) + "  " + cell(s.index.kind.rawValue, 6, left: true) + snapshot)
        }
    }
}

/// Options shared by both forms of `latentctl rebuild`.
struct IndexOptions: ParsableArguments {
    @Option(help: "hnsw, ivf or flat (default: the collection's current index).") var index: String?
    @Option var m: Int?
    @Option var efConstruction: Int?
    @Option var nlist: Int?

    func spec(current: IndexSpec) throws -> IndexSpec {
        var kind: IndexSpec.Kind?
        if let index {
            guard let k = IndexSpec.Kind(rawValue: index.uppercased()) else { throw ValidationError("--index must be hnsw, ivf or flat") }
            kind = k
        }
        return current.rebuilt(kind: kind, m: m, efConstruction: efConstruction, nlist: nlist)
    }

    var vrebuildArguments: [String] {
        var out: [String] = []
        if let index { out += ["INDEX", index.uppercased()] }
        if let m { out += ["M", String(m)] }
        if let efConstruction { out += ["EF_CONSTRUCTION", String(efConstruction)] }
        if let nlist { out += ["NLIST", String(nlist)] }
        return out
    }
}

/// `latentctl rebuild`: rebuild indexes offline in a data directory, or ask a running server to.
struct Rebuild: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Rebuild collection indexes, offline (--data-dir) or on a running server (--host/--port).")

    @Option(help: "Rebuild offline in this data directory (no server may hold it).") var dataDir: String?
    @Option(help: "Ask the latentd at this host instead.") var host: String?
    @Option var port = 7379
    @Option(help: "Only this collection (default: every collection with an index).") var collection: String?
    @OptionGroup var options: IndexOptions

    func validate() throws {
        if (dataDir == nil) == (host == nil) { throw ValidationError("give either --data-dir DIR or --host HOST [--port P]") }
    }

    func run() throws {
        if let host { try online(host: host) } else if let dataDir { try offline(dataDir) }
    }

    private func offline(_ dir: String) throws {
        let catalog = try openCatalogOffline(dir, online: "rebuild a served collection online with: latentctl rebuild --host 127.0.0.1 --port 7379 ...")
        defer { catalog.close() }
        let names = collection.map { [$0] } ?? catalog.names.filter { catalog.collection($0)?.definition.index.kind != .flat }
        for name in names {
            guard let c = catalog.collection(name) else { throw Failure("latentctl: no such collection '\(name)'") }
            let spec = try options.spec(current: c.definition.index)
            try catalog.rebuild(name, spec: spec)
            let bar = ProgressBar(title: "\(name) \(spec.kind.rawValue)", total: c.count)
            while true {
                let info = c.info()
                guard case .building(let progress) = info.state else {
                    if info.pending == 0 || info.state == .untrained { break }
                    Thread.sleep(forTimeInterval: 0.2)
                    continue
                }
                bar.update(fraction: progress)
                Thread.sleep(forTimeInterval: 0.2)
            }
            bar.finish()
        }
    }

    private func online(host: String) throws {
        let conn = try RESPConnection(host: host, port: port)
        let names: [String]
        if let collection {
            names = [collection]
        } else if case .array(let items?) = try conn.call(["VLIST"]) {
            names = items.compactMap { if case .bulk(let b?) = $0 { return String(decoding: b, as: UTF8.self) } else { return nil } }
        } else {
            names = []
        }
        for name in names {
            let reply = try conn.call(["VREBUILD", name] + options.vrebuildArguments)
            if case .error(let e) = reply { throw Failure("latentctl: \(name): \(e)") }
            var size = 0
            let bar = ProgressBar(title: name, total: 0)
            while true {
                guard case .array(let items?) = try conn.call(["VINFO", name]) else { break }
                var info: [String: String] = [:]
                for i in Swift.stride(from: 0, to: items.count - 1, by: 2) {
                    if case .bulk(let k?) = items[i], case .bulk(let v?) = items[i + 1] {
                        info[String(decoding: k, as: UTF8.self)] = String(decoding: v, as: UTF8.self)
                    }
                }
                size = Int(info["size"] ?? "0") ?? 0
                bar.total = size
                if info["index-state"] != "building" && info["pending"] == "0" { break }
                bar.update(fraction: (Double(info["build-progress"]?.dropLast() ?? "0") ?? 0) / 100)
                Thread.sleep(forTimeInterval: 0.2)
            }
            bar.finish()
        }
    }
}

/// Opens a data directory for an offline tool; a directory a server holds is refused with a pointer to the
/// online form of the same command.
func openCatalogOffline(_ dir: String, online hint: String) throws -> CollectionCatalog {
    var logger = Logger(label: "latentctl")
    logger.logLevel = .warning
    do {
        return try CollectionCatalog(directory: dir, fsync: .no, logger: logger)
    } catch let e as StorageError where e.kind == .locked {
        throw Failure("latentctl: \(e.message)\n(\(hint))")
    } catch {
        throw Failure("latentctl: cannot open \(dir): \(error)")
    }
}

/// A message for the operator on stderr, then exit status 1.
struct Failure: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// A progress bar with time left and vectors/s (or another unit) on a terminal; plain progress lines
/// otherwise (logs, CI).
final class ProgressBar {
    let title: String
    var total: Int
    var unit = "vectors"
    private let start = Date()
    private let tty = isatty(STDOUT_FILENO) != 0
    private var lastLine = Date.distantPast
    private var lastPercent = -1

    init(title: String, total: Int) {
        self.title = title
        self.total = total
    }

    func update(fraction: Double) {
        let f = min(max(fraction, 0), 1)
        let elapsed = Date().timeIntervalSince(start)
        let rate = elapsed > 0 ? f * Double(total) / elapsed : 0
        let left = f > 0.01 ? elapsed * (1 - f) / f : 0
        let percent = Int(f * 100)
        if tty {
            let width = 30, filled = Int(f * Double(width))
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            print(String(format: "\r%@ [%@] %3d%%  %.0f %@/s  %@ left ", title, bar, percent, rate, unit, clock(left)), terminator: "")
            fflush(stdout)
        } else if percent != lastPercent && (percent % 10 == 0 || Date().timeIntervalSince(lastLine) > 5) {
            print(String(format: "%@: %d%% (%.0f %@/s, %@ left)", title, percent, rate, unit, clock(left)))
            lastLine = Date()
            lastPercent = percent
        }
    }

    func finish() {
        let elapsed = Date().timeIntervalSince(start)
        if tty { print("") }
        print(String(format: "%@: done, %d %@ in %.1f s", title, total, unit, elapsed))
    }

    private func clock(_ s: Double) -> String { String(format: "%d:%02d", Int(s) / 60, Int(s) % 60) }
}

/// `latentctl compact`: a manual RocksDB compaction of a stopped server's data directory (after large
/// deletes or drops), one column family at a time with its progress. A running server does the same
/// online with `COMPACT [collection]`.
struct Compact: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compact a data directory (all of it, or one collection's records) to give back deleted records' space.")

    @Option(help: "The data directory of a stopped latentd (a running one: send COMPACT instead).") var dataDir = "./data"
    @Option(help: "Only this collection's records (default: the whole store).") var collection: String?

    func run() throws {
        func mib(_ b: UInt64) -> String { String(format: "%.1f MiB", Double(b) / 1_048_576) }
        var before: UInt64 = 0, after: UInt64 = 0
        do {
            _ = try CollectionCatalog.compact(directory: dataDir, collection: collection) { step, done, total in
                before += step.sstBytesBefore
                after += step.sstBytesAfter
                print("[\(done)/\(total)] \(step.columnFamily): \(mib(step.sstBytesBefore)) -> \(mib(step.sstBytesAfter)) "
                      + String(format: "in %.2f s", step.seconds))
                fflush(stdout)
            }
        } catch {
            throw Failure("latentctl compact: \(error)")
        }
        print("compacted \(collection.map { "collection '\($0)'" } ?? "the whole store"): \(mib(before)) -> \(mib(after))")
    }
}

/// `latentctl verify`: checks a stopped server's data directory (StoreVerifier) and exits non-zero with
/// every problem in words.
struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a data directory: RocksDB checksums, every vector and id, every index snapshot against the store.")

    @Option(help: "The data directory of a stopped latentd.") var dataDir = "./data"

    func run() throws {
        let report: StoreVerifier.Report
        do {
            report = try StoreVerifier.verify(directory: dataDir) { print($0); fflush(stdout) }
        } catch {
            throw Failure("latentctl verify: \(error)")
        }
        for note in report.notes { print("note: \(note)") }
        print("\(report.collections) collection(s), \(report.elements) element(s), \(report.snapshots) index snapshot(s), "
              + "\(report.records) record(s) read")
        guard report.isClean else {
            for p in report.problems { FileHandle.standardError.write(Data("problem: \(p)\n".utf8)) }
            throw Failure("latentctl verify: \(report.problems.count) problem(s) in \(dataDir)")
        }
        print("ok: no problems found")
    }
}
