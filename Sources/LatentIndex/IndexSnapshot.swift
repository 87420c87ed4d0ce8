import LatentVectors

/// Why a snapshot could not be used. The collection logs it and rebuilds; it is never fatal.
public struct SnapshotError: Error, CustomStringConvertible {
    public let description: String
    init(_ d: String) { description = d }
}

/// Serialized indexes, so a restart loads the index instead of rebuilding it.
///
/// Layout (little-endian): magic `LDBINDEX`, format version u32, kind u8 (1 HNSW, 2 IVF), metric u8,
/// dimension u32, then the index's own payload, then a 64-bit checksum of everything before it.
/// docs/indexes.md describes the payloads.
public enum IndexSnapshot {
    static let magic = Array("LDBINDEX".utf8)
    public static let formatVersion: UInt32 = 1

    public static func encode(_ index: VectorIndex) -> [UInt8]? {
        var w = ByteWriter()
        w.bytes(magic)
        w.u32(formatVersion)
        switch index {
        case let h as HNSWIndex:
            w.u8(1)
            w.u8(metricCode(h.metric))
            w.u32(UInt32(h.dimension))
            h.serialize(into: &w)
        case let i as IVFFlatIndex:
            w.u8(2)
            w.u8(metricCode(i.metric))
            w.u32(UInt32(i.dimension))
            i.serialize(into: &w)
        default:
            return nil
        }
        w.u64(Checksum64.of(w.data))
        return w.data
    }

    /// Decodes a snapshot made by `encode`; throws when it is truncated, corrupt (checksum), of another
    /// format version, or does not match the collection's metric and dimension.
    public static func decode(_ data: [UInt8], metric: Metric, dimension: Int) throws -> VectorIndex {
        guard data.count >= 8 + 4 + 1 + 1 + 4 + 8 else { throw SnapshotError("snapshot truncated (\(data.count) bytes)") }
        let body = data[..<(data.count - 8)]
        var tail = ByteReader(data[(data.count - 8)...])
        guard try tail.u64() == Checksum64.of(body) else { throw SnapshotError("snapshot checksum mismatch") }
        var r = ByteReader(body)
        guard try r.bytes(8) == magic else { throw SnapshotError("not an index snapshot") }
        let version = try r.u32()
        guard version == formatVersion else { throw SnapshotError("snapshot format \(version), expected \(formatVersion)") }
        let kind = try r.u8()
        guard try r.u8() == metricCode(metric) else { throw SnapshotError("snapshot metric differs from the collection's") }
        guard try r.u32() == UInt32(dimension) else { throw SnapshotError("snapshot dimension differs from the collection's") }
        switch kind {
        case 1: return try HNSWIndex.deserialize(&r, metric: metric, dimension: dimension)
        case 2: return try IVFFlatIndex.deserialize(&r, metric: metric, dimension: dimension)
        default: throw SnapshotError("unknown index kind \(kind)")
        }
    }

    /// Whether `data` ends with the checksum of the rest (cheap integrity check, no decoding).
    public static func checksumIsValid(_ data: [UInt8]) -> Bool {
        guard data.count > 8 else { return false }
        var tail = ByteReader(data[(data.count - 8)...])
        return (try? tail.u64()) == Checksum64.of(data[..<(data.count - 8)])
    }

    static func metricCode(_ m: Metric) -> UInt8 {
        switch m {
        case .cosine: return 1
        case .l2: return 2
        case .ip: return 3
        }
    }
}

/// A fast 64-bit checksum over 8-byte words (multiply-rotate mixing): catches torn or corrupted
/// snapshots at several GB/s. Not cryptographic.
enum Checksum64 {
    static func of(_ bytes: ArraySlice<UInt8>) -> UInt64 { bytes.withUnsafeBytes { of($0) } }
    static func of(_ bytes: [UInt8]) -> UInt64 { bytes.withUnsafeBytes { of($0) } }

    static func of(_ raw: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(raw.count)
        let words = raw.count / 8
        for i in 0..<words {
            let w = raw.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)
            h = ((h ^ w) &* 0xBF58_476D_1CE4_E5B9)
            h = (h << 31) | (h >> 33)
        }
        for i in (words * 8)..<raw.count { h = (h ^ UInt64(raw[i])) &* 0x94D0_49BB_1331_11EB }
        h ^= h >> 29
        return h &* 0x94D0_49BB_1331_11EB
    }
}

struct ByteWriter {
    var data: [UInt8] = []

    mutating func u8(_ v: UInt8) { data.append(v) }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
    mutating func i32(_ v: Int32) { u32(UInt32(bitPattern: v)) }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
    mutating func bytes(_ b: [UInt8]) { data.append(contentsOf: b) }
    mutating func raw(_ p: UnsafeRawPointer, _ count: Int) { data.append(contentsOf: UnsafeRawBufferPointer(start: p, count: count)) }
    mutating func u32s(_ a: [UInt32]) { for v in a { u32(v) } }
    mutating func floats(_ a: [Float]) { a.withUnsafeBytes { data.append(contentsOf: $0) } }
}

struct ByteReader {
    private let data: ArraySlice<UInt8>
    private var position: Int

    init(_ data: ArraySlice<UInt8>) {
        self.data = data
        position = data.startIndex
    }

    var remaining: Int { data.endIndex - position }

    private mutating func take(_ n: Int) throws -> ArraySlice<UInt8> {
        guard n >= 0, remaining >= n else { throw SnapshotError("snapshot truncated") }
        defer { position += n }
        return data[position..<(position + n)]
    }

    mutating func u8() throws -> UInt8 { try take(1).first! }
    mutating func u32() throws -> UInt32 { UInt32(littleEndian: try take(4).withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }) }
    mutating func i32() throws -> Int32 { Int32(bitPattern: try u32()) }
    mutating func u64() throws -> UInt64 { UInt64(littleEndian: try take(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }) }
    mutating func bytes(_ n: Int) throws -> [UInt8] { Array(try take(n)) }
    mutating func copy(_ n: Int, to p: UnsafeMutableRawPointer) throws {
        guard n > 0 else { return }
        try take(n).withUnsafeBytes { p.copyMemory(from: $0.baseAddress!, byteCount: n) }
    }
    mutating func u32s(_ n: Int) throws -> [UInt32] {
        let bytes = try take(n * 4)
        return bytes.withUnsafeBytes { raw in (0..<n).map { UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self)) } }
    }
    mutating func floats(_ n: Int) throws -> [Float] {
        let bytes = try take(n * 4)
        return bytes.withUnsafeBytes { raw in (0..<n).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) } }
    }
}
