import LatentVectors

/// How a user's seen items (VSETSEEN) are stored in the `seen` column family.
///
/// Version 1 stores joined ids with "\n" between them, which cannot hold an id containing "\n". Binary
/// ids are stored length-prefixed behind a marker: 0xFF 0x01, then per id a 4-byte big-endian length and
/// the bytes. 0xFF never starts valid UTF-8, so a value written the old way (always UTF-8 text) is never
/// mistaken for the new form, and stores written before keep their meaning without a migration.
enum SeenList {
    static let marker: [UInt8] = [0xFF, 0x01]

    static func encode(_ items: [ElementID]) -> [UInt8] {
        var out = marker
        out.reserveCapacity(2 + items.reduce(0) { $0 + 4 + $1.count })
        for item in items {
            let n = UInt32(item.count) // ids are at most 512 bytes (Validation)
            out += [UInt8(n >> 24), UInt8((n >> 16) & 0xFF), UInt8((n >> 8) & 0xFF), UInt8(n & 0xFF)]
            out += item.bytes
        }
        return out
    }

    static func decode(_ raw: [UInt8]) throws -> [ElementID] {
        guard raw.starts(with: marker) else {
            return raw.split(separator: UInt8(ascii: "\n")).map { ElementID($0) }
        }
        var items: [ElementID] = []
        var i = marker.count
        while i < raw.count {
            guard raw.count - i >= 4 else { throw EngineError.storage("seen list is truncated (corrupt value)") }
            let n = Int(raw[i]) << 24 | Int(raw[i + 1]) << 16 | Int(raw[i + 2]) << 8 | Int(raw[i + 3])
            i += 4
            guard raw.count - i >= n else { throw EngineError.storage("seen list is truncated (corrupt value)") }
            items.append(ElementID(raw[i..<(i + n)]))
            i += n
        }
        return items
    }
}
