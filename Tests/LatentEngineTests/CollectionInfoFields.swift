import LatentEngine

extension CollectionInfo {
    /// The fields the tests read, named as VINFO names them.
    var testFields: [String: String] {
        var out = ["index": requested.kind.rawValue, "indexed": String(indexed), "pending": String(pending),
                   "deleted-in-index": String(deletedInIndex), "builds": String(builds)]
        switch state {
        case .none: out["index-state"] = "none"
        case .ready: out["index-state"] = "ready"
        case .untrained: out["index-state"] = "untrained"
        case .building: out["index-state"] = "building"
        }
        for f in indexFields { out[f.name] = f.value }
        return out
    }
}
