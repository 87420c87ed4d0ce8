/// What VLINKS and VINFO show of the graph. Callers hold the collection's state lock (read side), under
/// which no insert or repair rewrites links, so the lists are read without the stripes.
extension HNSWIndex {
    public func links(ofSlot slot: UInt32) -> [[UInt32]]? {
        guard let node = nodeOfSlot[slot], !deleted[Int(node)] else { return nil }
        let top = Int(levels[Int(node)])
        return (0...top).reversed().map { level in
            withLinks(node, level, locked: false) { list in
                // Tombstones and free nodes are waypoints, not neighbours a user can name.
                list.compactMap { n in deleted[Int(n)] ? nil : slots[Int(n)] }
            }
        }
    }

    public var graphMaxLevel: Int? { max(maxLevel, 0) }
}
