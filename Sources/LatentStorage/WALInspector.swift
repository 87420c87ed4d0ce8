import Foundation

/// Reads RocksDB's write-ahead log files directly, to tell an operator what damage in them means:
/// where a file is damaged and how many writes come after the damage (the writes a point-in-time
/// recovery would drop). Used only to word messages: RocksDB itself decides what is recovered.
///
/// The format (RocksDB's log_format.h, legacy records, which is what LatentDB's options write): 32 KiB
/// blocks of records, each a 7-byte header (masked CRC32C of type and payload, u16 length, u8 type:
/// 1 full, 2 first, 3 middle, 4 last fragment) and its payload; fewer than 7 bytes left in a block are
/// padding. A logical record is a WriteBatch: u64 sequence number, u32 count, then its operations.
public enum WALInspector {
    public struct FileReport: Sendable {
        public var name: String
        public var bytes: Int
        /// Byte offset of the first damaged record, nil when the file reads cleanly to its end.
        public var damageOffset: Int?
        /// Write batches, and the operations in them, that read cleanly after the damage.
        public var batchesAfterDamage = 0
        public var operationsAfterDamage = 0
        /// The largest sequence number a clean record ends at (anywhere in the file).
        public var lastSequence: UInt64 = 0
    }

    static let blockSize = 32 * 1024
    static let headerSize = 7

    /// Every `*.log` file of `directory`, oldest first.
    public static func scan(directory: String) -> [FileReport] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".log") }.sorted()
        return names.compactMap { name in
            guard let data = FileManager.default.contents(atPath: directory + "/" + name) else { return nil }
            return scan(Array(data), name: name)
        }
    }

    static func scan(_ bytes: [UInt8], name: String) -> FileReport {
        var report = FileReport(name: name, bytes: bytes.count)
        var offset = 0
        var pending: [UInt8]? = nil
        func finish(_ record: [UInt8]) {
            guard record.count >= 12 else { return }
            var seq: UInt64 = 0
            for i in 0..<8 { seq |= UInt64(record[i]) << (8 * UInt64(i)) }
            var count: UInt32 = 0
            for i in 0..<4 { count |= UInt32(record[8 + i]) << (8 * UInt32(i)) }
            let (end, overflow) = seq.addingReportingOverflow(UInt64(count))
            if !overflow && count > 0 { report.lastSequence = max(report.lastSequence, end - 1) }
            if report.damageOffset != nil {
                report.batchesAfterDamage += 1
                report.operationsAfterDamage += Int(count)
            }
        }
        func damaged(at position: Int) {
            if report.damageOffset == nil { report.damageOffset = position }
            pending = nil
            // Resynchronise at the next block.
            offset = (position / blockSize + 1) * blockSize
        }
        while offset + headerSize <= bytes.count {
            let inBlock = offset % blockSize
            if blockSize - inBlock < headerSize { offset += blockSize - inBlock; continue }
            let length = Int(bytes[offset + 4]) | Int(bytes[offset + 5]) << 8
            let type = bytes[offset + 6]
            let stored = UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16
                | UInt32(bytes[offset + 3]) << 24
            if type == 0 && length == 0 && stored == 0 {
                // Zeroes: the preallocated, never written end of the file (or block padding).
                if bytes[offset...].allSatisfy({ $0 == 0 }) { break }
                damaged(at: offset)
                continue
            }
            let payloadStart = offset + headerSize
            guard (1...4).contains(type), inBlock + headerSize + length <= blockSize, payloadStart + length <= bytes.count else {
                damaged(at: offset)
                continue
            }
            let crc = CRC32C.update(CRC32C.update(0, [type][...]), bytes[payloadStart..<(payloadStart + length)])
            guard CRC32C.mask(crc) == stored else {
                damaged(at: offset)
                continue
            }
            let payload = bytes[payloadStart..<(payloadStart + length)]
            switch type {
            case 1: pending = nil; finish(Array(payload))
            case 2: pending = Array(payload)
            case 3: if pending != nil { pending! += payload }
            default:
                if var p = pending {
                    p += payload
                    finish(p)
                }
                pending = nil
            }
            offset = payloadStart + length
        }
        return report
    }

    /// One sentence per damaged file, for the refusal message.
    public static func describeDamage(directory: String) -> String {
        let damaged = scan(directory: directory).filter { $0.damageOffset != nil }
        guard !damaged.isEmpty else {
            return "No WAL file shows damage to this reader: the damage is in a file RocksDB reads at open (see its LOG in the directory)."
        }
        return damaged.map { f in
            "WAL file \(f.name) is damaged at byte \(f.damageOffset!) of \(f.bytes); \(f.batchesAfterDamage) write batches "
                + "(\(f.operationsAfterDamage) operations) come after the damage."
        }.joined(separator: " ")
    }
}

/// CRC-32C (Castagnoli), as RocksDB checksums log records, and RocksDB's mask of stored CRCs.
enum CRC32C {
    static let table: [UInt32] = (0..<256).map { i -> UInt32 in
        var c = UInt32(i)
        for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        return c
    }

    static func update(_ crc: UInt32, _ bytes: ArraySlice<UInt8>) -> UInt32 {
        var c = ~crc
        for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return ~c
    }

    static func mask(_ crc: UInt32) -> UInt32 { ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8 }
}
