import Foundation

/// A value while a filter runs. Plain data (no references), so the evaluator's stack costs no
/// reference counting.
public enum FilterValue: Equatable, Sendable {
    case number(Double)
    /// >= 0: a code in the table's string dictionary; < 0: bound literal string -(ref + 1).
    case string(Int32)
    case null
    /// >= 0: an array held by the table; < 0: bound literal tuple -(ref + 1).
    case tuple(Int32)
}

/// The attributes of one collection's elements as columns, one per top-level field name, so a filter
/// reads a field of a slot with two array loads and never touches RocksDB or parses JSON.
///
/// A column is dense (a tag byte and 8 payload bytes per slot: 9 bytes per element) once at least a
/// quarter of the slots have the field, and a dictionary from slot to value before that, so rare fields
/// cost per element that has them. Strings are dictionary-encoded with reference counts (a code is
/// reused once no element holds the string), each with its numeric reading precomputed; arrays are
/// held once per element. Only keys a selector can name (letters, digits, `_`, `-`) become columns.
///
/// Not thread-safe: the owning collection guards it with its state lock (mutations under the write
/// lock, `BoundFilter`s under the read lock).
public final class AttributeTable {
    enum Tag: UInt8 { case absent = 0, number, string, null, array, unsupported }
    struct Entry { var tag: Tag; var bits: UInt64 }

    struct Column {
        var dense = false
        var tags: [UInt8] = []
        var bits: [UInt64] = []
        var sparse: [UInt32: Entry] = [:]
        var count = 0

        func get(_ slot: UInt32) -> Entry {
            if dense {
                let i = Int(slot)
                guard i < tags.count else { return Entry(tag: .absent, bits: 0) }
                return Entry(tag: Tag(rawValue: tags[i]) ?? .absent, bits: bits[i])
            }
            return sparse[slot] ?? Entry(tag: .absent, bits: 0)
        }
    }

    private(set) var columnOf: [String: Int] = [:]
    var columns: [Column] = []
    private(set) var strings: [[UInt8]] = []
    private(set) var stringNumbers: [Double] = []
    private var stringUses: [Int32] = []
    private var codeOf: [[UInt8]: Int32] = [:]
    private var freeCodes: [Int32] = []
    private(set) var arrays: [[FilterValue]] = []
    private var freeArrays: [Int32] = []
    /// Slots with at least one selectable field.
    public private(set) var elementsWithFields = 0
    private var highestSlot = -1
    /// Changes whenever a field of any slot changes: what a filter matched at one version it matches at
    /// every later read of the same version (the collection caches filter matches by it).
    public private(set) var version: UInt64 = 0

    public init() {}

    public var fieldCount: Int { columnOf.count }

    /// Replaces what `slot` has with the fields of `attributes` (nil or not a JSON object: none).
    public func set(slot: UInt32, attributes: [UInt8]?) {
        clear(slot: slot)
        version &+= 1
        guard let attributes, let fields = AttributeJSON.fields(attributes) else { return }
        var any = false
        for (name, value) in fields where Self.isSelectable(name) {
            let c: Int
            if let existing = columnOf[name] { c = existing } else {
                columns.append(Column())
                c = columns.count - 1
                columnOf[name] = c
            }
            put(encode(value), slot: slot, column: c)
            any = true
        }
        if any { elementsWithFields += 1 }
        highestSlot = max(highestSlot, Int(slot))
    }

    /// Forgets every field of `slot`.
    public func clear(slot: UInt32) {
        var had = false
        for c in columns.indices {
            let e = columns[c].get(slot)
            guard e.tag != .absent else { continue }
            had = true
            release(e)
            if columns[c].dense {
                columns[c].tags[Int(slot)] = Tag.absent.rawValue
                columns[c].bits[Int(slot)] = 0
            } else {
                columns[c].sparse[slot] = nil
            }
            columns[c].count -= 1
        }
        if had {
            elementsWithFields -= 1
            version &+= 1
        }
    }

    static func isSelectable(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { c in
            (c >= 48 && c <= 57) || ((c | 0x20) >= 97 && (c | 0x20) <= 122) || c == 95 || c == 45
        }
    }

    private func put(_ e: Entry, slot: UInt32, column c: Int) {
        columns[c].count += 1
        if !columns[c].dense, columns[c].count * 4 >= max(64, highestSlot + 1) {
            // Dense from here on: 9 bytes per slot beat a dictionary entry once a quarter of slots have it.
            var tags = [UInt8](repeating: 0, count: max(highestSlot + 1, Int(slot) + 1))
            var bits = [UInt64](repeating: 0, count: tags.count)
            for (s, v) in columns[c].sparse { tags[Int(s)] = v.tag.rawValue; bits[Int(s)] = v.bits }
            columns[c].sparse = [:]
            columns[c].tags = tags
            columns[c].bits = bits
            columns[c].dense = true
        }
        if columns[c].dense {
            let i = Int(slot)
            if i >= columns[c].tags.count {
                let grown = max(i + 1, columns[c].tags.count * 2)
                columns[c].tags.append(contentsOf: repeatElement(0, count: grown - columns[c].tags.count))
                columns[c].bits.append(contentsOf: repeatElement(0, count: grown - columns[c].bits.count))
            }
            columns[c].tags[i] = e.tag.rawValue
            columns[c].bits[i] = e.bits
        } else {
            columns[c].sparse[slot] = e
        }
    }

    // MARK: Values

    private func encode(_ v: AttributeValue) -> Entry {
        switch v {
        case .number(let d): return Entry(tag: .number, bits: d.bitPattern)
        case .string(let s): return Entry(tag: .string, bits: UInt64(intern(s)))
        case .null: return Entry(tag: .null, bits: 0)
        case .unsupported: return Entry(tag: .unsupported, bits: 0)
        case .array(let items): return Entry(tag: .array, bits: UInt64(storeArray(items)))
        }
    }

    private func storeArray(_ items: [AttributeValue]) -> Int32 {
        let values: [FilterValue] = items.map { item in
            switch item {
            case .number(let d): return .number(d)
            case .string(let s): return .string(intern(s))
            case .null, .unsupported: return .null
            case .array(let inner): return .tuple(storeArray(inner))
            }
        }
        if let i = freeArrays.popLast() { arrays[Int(i)] = values; return i }
        arrays.append(values)
        return Int32(arrays.count - 1)
    }

    private func intern(_ s: [UInt8]) -> Int32 {
        if let code = codeOf[s] { stringUses[Int(code)] += 1; return code }
        let code: Int32
        if let free = freeCodes.popLast() {
            code = free
            strings[Int(code)] = s
            stringNumbers[Int(code)] = Self.numericValue(s)
            stringUses[Int(code)] = 1
        } else {
            code = Int32(strings.count)
            strings.append(s)
            stringNumbers.append(Self.numericValue(s))
            stringUses.append(1)
        }
        codeOf[s] = code
        return code
    }

    private func release(_ e: Entry) {
        switch e.tag {
        case .string: releaseString(Int32(truncatingIfNeeded: e.bits))
        case .array: releaseArray(Int32(truncatingIfNeeded: e.bits))
        default: break
        }
    }

    private func releaseString(_ code: Int32) {
        stringUses[Int(code)] -= 1
        guard stringUses[Int(code)] == 0 else { return }
        codeOf[strings[Int(code)]] = nil
        strings[Int(code)] = []
        freeCodes.append(code)
    }

    private func releaseArray(_ i: Int32) {
        for v in arrays[Int(i)] {
            switch v {
            case .string(let code): releaseString(code)
            case .tuple(let inner): releaseArray(inner)
            default: break
            }
        }
        arrays[Int(i)] = []
        freeArrays.append(i)
    }

    func code(of s: [UInt8]) -> Int32? { codeOf[s] }

    /// A string read as a number the way Redis' filter does: the whole string must parse (strtod),
    /// otherwise 0.
    static func numericValue(_ s: [UInt8]) -> Double {
        guard !s.isEmpty, s.count < 256, !s.contains(0) else { return 0 }
        return s.withUnsafeBufferPointer { raw -> Double in
            var text = Array(raw) + [0]
            return text.withUnsafeMutableBufferPointer { buf -> Double in
                let start = UnsafeMutableRawPointer(buf.baseAddress!).assumingMemoryBound(to: CChar.self)
                var end: UnsafeMutablePointer<CChar>?
                let v = strtod(start, &end)
                return end == start + s.count ? v : 0
            }
        }
    }

    /// Bytes held: columns, the string dictionary and arrays (allocator rounding not included).
    public var memoryBytes: Int {
        var n = 0
        for c in columns {
            n += c.dense ? c.tags.capacity + c.bits.capacity * 8 : c.sparse.capacity * 24 + 64
        }
        for s in strings { n += s.capacity + 32 + 8 + 4 + 48 }
        for a in arrays { n += a.capacity * 9 + 32 }
        return n + columnOf.count * 64
    }
}
