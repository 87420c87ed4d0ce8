import LatentEngine
import LatentProtocol

/// VINFO's reply: a collection's `CollectionInfo` as field/value pairs of bulk strings.
enum VInfoReply {
    static func fields(_ info: CollectionInfo) -> [(String, String)] {
        var out = [("name", info.name), ("metric", info.metric.rawValue), ("dim", String(info.dimension)),
                   ("size", String(info.size)), ("index", info.requested.kind.rawValue)]
        switch info.state {
        case .none: out.append(("index-state", "none"))
        case .ready: out.append(("index-state", "ready"))
        case .untrained: out.append(("index-state", "untrained"))
        case .building(let progress):
            out.append(("index-state", "building"))
            out.append(("build-progress", "\(Int(progress * 100))%"))
        }
        out += [("indexed", String(info.indexed)), ("pending", String(info.pending)),
                ("deleted-in-index", String(info.deletedInIndex)), ("builds", String(info.builds))]
        out += info.indexFields.map { ($0.name, $0.value) }
        out.append(("memory", String(info.memoryBytes)))
        return out
    }

    static func reply(_ info: CollectionInfo) -> RESPValue {
        .array(fields(info).flatMap { [RESPValue.bulk($0.0), .bulk($0.1)] })
    }
}
