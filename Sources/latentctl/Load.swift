import ArgumentParser
import Foundation
import LatentEngine
import LatentIndex
import LatentMF
import LatentStorage
import LatentVectors
import Logging

/// `latentctl load`: imports user and item matrices into collections, atomically: each collection is filled
/// under a staging name and renamed over the old one only when complete, so an interrupted load leaves the
/// old data serving.
struct Load: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Load user and item vectors (.npy or CSV) into collections, offline or online.")

    @Option(help: "A `latentctl train` output directory (users.npy, users.ids, items.npy, items.ids).") var modelDir: String?
    @Option var users: String?
    @Option var userIds: String?
    @Option var items: String?
    @Option var itemIds: String?
    @Option var usersCollection = "users"
    @Option var itemsCollection = "items"
    @Option(help: "COSINE, L2 or IP.") var metric = "IP"
    @Option(help: "Also load the item vectors into this COSINE collection, for \"items like this item\".")
    var itemSimilarityCollection: String?
    @Option(help: "flat, hnsw or ivf.") var index = "flat"
    @Option(help: "MovieLens movies.csv: each item's title and genres become its JSON attributes.") var attrs: String?
    @Option(help: "A ratings file: which items each user rated, for VSIM ... EXCLUDE-SEEN.") var seen: String?
    @Option(help: "Load offline into this data directory (no server may hold it).") var dataDir: String?
    @Option(help: "Load through the latentd at this host instead.") var host: String?
    @Option var port = 7379

    func validate() throws {
        if (dataDir == nil) == (host == nil) { throw ValidationError("give either --data-dir DIR or --host HOST [--port P]") }
        guard Metric(rawValue: metric.uppercased()) != nil else { throw ValidationError("--metric must be COSINE, L2 or IP") }
        guard IndexSpec.Kind(rawValue: index.uppercased()) != nil else { throw ValidationError("--index must be flat, hnsw or ivf") }
    }

    func run() throws {
        var sets: [(String, LabeledVectors)] = []
        do {
            if let modelDir {
                sets.append((usersCollection, try VectorFiles.read(vectors: modelDir + "/users.npy", ids: modelDir + "/users.ids")))
                sets.append((itemsCollection, try VectorFiles.read(vectors: modelDir + "/items.npy", ids: modelDir + "/items.ids")))
            }
            if let users { sets.append((usersCollection, try VectorFiles.read(vectors: users, ids: userIds))) }
            if let items { sets.append((itemsCollection, try VectorFiles.read(vectors: items, ids: itemIds))) }
        } catch {
            throw Failure("latentctl: \(error)")
        }
        if sets.isEmpty { throw Failure("latentctl: nothing to load: give --model-dir, or --users/--user-ids and/or --items/--item-ids") }
        if let similar = itemSimilarityCollection, let itemSet = sets.first(where: { $0.0 == itemsCollection })?.1 {
            sets.append((similar, itemSet))
        }
        let extras: Extras
        do {
            extras = Extras(attributes: try attrs.map(MovieLensMovies.attributes) ?? [:],
                            seen: try seen.map { try MovieLensMovies.seen(ratingsPath: $0) } ?? [:])
        } catch {
            throw Failure("latentctl: \(error)")
        }
        if let dataDir { try offline(dataDir, sets, extras) } else if let host { try online(host, sets, extras) }
    }

    /// Item attributes and users' seen items, written into the staging collections before the rename.
    struct Extras {
        var attributes: [String: String]
        var seen: [String: [String]]

        func forCollection(_ name: String, items: String, users: String) -> (attributes: [String: String], seen: [String: [String]]) {
            (name == users ? [:] : attributes, name == users ? seen : [:])
        }
    }

    /// The similarity collection compares item directions (COSINE); the others use --metric.
    private func metric(for name: String) -> String { name == itemSimilarityCollection ? "COSINE" : metric.uppercased() }

    private func staging(_ name: String) -> String { "\(name).loading-\(ProcessInfo.processInfo.processIdentifier)" }

    /// model.json's training parameters, stored with the loaded collections (VINFO shows them; FOLDIN
    /// uses the regularisation and confidence). nil without a model directory or model.json.
    var modelParameters: ModelParameters? {
        get throws {
            guard let modelDir, let data = FileManager.default.contents(atPath: modelDir + "/model.json") else { return nil }
            guard let json = try JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let method = json["method"] as? String, let reg = (json["regularization"] as? NSNumber)?.floatValue else {
                throw Failure("latentctl: \(modelDir)/model.json lacks \"method\" or \"regularization\": write it with latentctl train --out")
            }
            return ModelParameters(method: method, regularization: reg, alpha: (json["alpha"] as? NSNumber)?.floatValue,
                                   confidence: json["confidence"] as? String,
                                   logEpsilon: (json["log_epsilon"] as? NSNumber)?.floatValue,
                                   factors: (json["factors"] as? NSNumber)?.intValue,
                                   globalMean: (json["global_mean"] as? NSNumber)?.floatValue,
                                   biased: (json["biased"] as? NSNumber)?.boolValue,
                                   dataChecksum: json["data_checksum_fnv1a64"] as? String)
        }
    }

    private func offline(_ dir: String, _ sets: [(String, LabeledVectors)], _ extras: Extras) throws {
        let catalog = try openCatalogOffline(dir, online: "load into a running server with --host 127.0.0.1 --port 7379")
        defer { catalog.close() }
        for (name, v) in sets {
            let m = Metric(rawValue: metric(for: name))!
            if let existing = catalog.collection(name), existing.dimension != v.matrix.columns {
                throw Failure("latentctl: collection '\(name)' has dimension \(existing.dimension), the new vectors \(v.matrix.columns): VDROP it first to load another model")
            }
            let temp = staging(name)
            _ = try? catalog.drop(temp)
            let c = try catalog.create(name: temp, dimension: v.matrix.columns, metric: m, index: IndexSpec(kind: IndexSpec.Kind(rawValue: index.uppercased())!),
                                       model: try modelParameters)
            let bar = ProgressBar(title: name, total: v.ids.count)
            // One RocksDB write per 1,024 vectors (validated before: a failure here is a storage error).
            for start in Swift.stride(from: 0, to: v.ids.count, by: 1024) {
                let rows = start..<min(start + 1024, v.ids.count)
                let results = try c.upsert(rows.map { Collection.Upsert(id: ElementID(v.ids[$0]), vector: Array(v.matrix.row($0))) })
                for (r, result) in zip(rows, results) {
                    do { _ = try result.get() } catch { throw Failure("latentctl: \(v.ids[r]): \(error)") }
                }
                bar.update(fraction: Double(rows.upperBound) / Double(v.ids.count))
            }
            let (attributes, seen) = extras.forCollection(name, items: itemsCollection, users: usersCollection)
            for (id, json) in attributes where c.contains(ElementID(id)) { try c.setAttributes(id: ElementID(id), json: Array(json.utf8)) }
            for (id, items) in seen where c.contains(ElementID(id)) { try c.setSeen(id: ElementID(id), items: items.map { ElementID($0) }) }
            try catalog.store.db.syncWAL()
            try catalog.rename(temp, to: name)
            bar.finish()
        }
    }

    private func online(_ host: String, _ sets: [(String, LabeledVectors)], _ extras: Extras) throws {
        let conn = try RESPConnection(host: host, port: port)
        for (name, v) in sets {
            if case .integer(let dim) = try conn.call(["VDIM", name]), dim != v.matrix.columns {
                throw Failure("latentctl: collection '\(name)' has dimension \(dim), the new vectors \(v.matrix.columns): VDROP it first to load another model")
            }
            let temp = staging(name)
            _ = try conn.call(["VDROP", temp])
            var create = ["VCREATE", temp, "DIM", String(v.matrix.columns), "METRIC", metric(for: name), "INDEX", index.uppercased()]
            if let model = try modelParameters {
                create += ["MODEL", String(decoding: try JSONEncoder().encode(model), as: UTF8.self)]
            }
            if case .error(let e) = try conn.call(create) {
                throw Failure("latentctl: \(e)")
            }
            let bar = ProgressBar(title: name, total: v.ids.count)
            var row = 0
            while row < v.ids.count {
                let last = min(v.ids.count, row + 256)
                var out: [UInt8] = []
                for r in row..<last {
                    let blob = v.matrix.values[(r * v.matrix.columns)..<((r + 1) * v.matrix.columns)].withUnsafeBytes { Array($0) }
                    RESPConnection.encode([Array("VADD".utf8), Array(temp.utf8), Array("FP32".utf8), blob, Array(v.ids[r].utf8)], into: &out)
                }
                try conn.send(out)
                for r in row..<last {
                    if case .error(let e) = try conn.readReply() { throw Failure("latentctl: \(v.ids[r]): \(e)") }
                }
                row = last
                bar.update(fraction: Double(row) / Double(v.ids.count))
            }
            let (attributes, seen) = extras.forCollection(name, items: itemsCollection, users: usersCollection)
            var extra: [[String]] = attributes.map { ["VSETATTR", temp, $0.key, $0.value] }
            extra += seen.map { ["VSETSEEN", temp, $0.key] + $0.value }
            for chunk in Swift.stride(from: 0, to: extra.count, by: 256) {
                var out: [UInt8] = []
                for request in extra[chunk..<min(extra.count, chunk + 256)] {
                    RESPConnection.encode(request.map { Array($0.utf8) }, into: &out)
                }
                try conn.send(out)
                for _ in chunk..<min(extra.count, chunk + 256) {
                    if case .error(let e) = try conn.readReply() { throw Failure("latentctl: \(e)") }
                }
            }
            if case .error(let e) = try conn.call(["VRENAME", temp, name]) { throw Failure("latentctl: \(e)") }
            bar.finish()
        }
    }
}
