import Foundation

/// A `FilterExpression` bound to one collection's `AttributeTable`: selectors resolved to columns,
/// string literals to dictionary codes where the string exists. `matches(slot:)` runs the program on a
/// fixed stack without allocating.
///
/// One per query and thread: it owns its stack. It reads the table, so it is used only while the
/// owning collection's read lock is held (the table does not change under it).
public final class BoundFilter {
    private let program: [FilterInstruction]
    private let table: AttributeTable
    /// Each selector's column storage, taken once (array references, no copying): the hot loop then
    /// reads `tags[f][slot]` without going through the table's class properties. Valid because the
    /// table does not change while the owning collection's read lock is held.
    private let dense: [Bool]
    private let tags: [[UInt8]]
    private let bits: [[UInt64]]
    private let sparse: [[UInt32: AttributeTable.Entry]]
    private let literalStrings: [[UInt8]]
    private let literalNumbers: [Double]
    /// Program string operands as values: dictionary codes when the table has the string.
    private let stringOperands: [FilterValue]
    private let literalTuples: [[FilterValue]]
    /// True when a selector names a field no element has: every evaluation fails.
    public let matchesNothing: Bool
    /// Invariant: `capacity == expression.stackDepth` (at least 1); the compiler proved the program never
    /// pushes deeper, so `stack[depth]` stays in bounds.
    private let stack: UnsafeMutablePointer<FilterValue>
    private let capacity: Int

    public init(_ expression: FilterExpression, table: AttributeTable) {
        program = expression.program
        self.table = table
        let columns = expression.fields.map { table.columnOf[$0].map { table.columns[$0] } }
        matchesNothing = columns.contains { $0 == nil }
        dense = columns.map { $0?.dense ?? false }
        tags = columns.map { $0?.tags ?? [] }
        bits = columns.map { $0?.bits ?? [] }
        sparse = columns.map { $0?.sparse ?? [:] }
        literalStrings = expression.strings
        literalNumbers = expression.strings.map(AttributeTable.numericValue)
        stringOperands = expression.strings.indices.map { i in
            table.code(of: expression.strings[i]).map { FilterValue.string($0) } ?? .string(Int32(-(i + 1)))
        }
        let operands = stringOperands
        literalTuples = expression.tuples.map { items in
            items.map { item in
                switch item {
                case .number(let d): return .number(d)
                case .string(let i): return operands[i]
                }
            }
        }
        capacity = max(1, expression.stackDepth)
        stack = UnsafeMutablePointer<FilterValue>.allocate(capacity: capacity)
        stack.initialize(repeating: .null, count: capacity)
    }

    deinit {
        stack.deinitialize(count: capacity)
        stack.deallocate()
    }

    /// Whether the element in `slot` passes the filter.
    public func matches(slot: UInt32) -> Bool {
        if matchesNothing { return false }
        var depth = 0
        for instruction in program {
            switch instruction {
            case .number(let d): stack[depth] = .number(d); depth += 1
            case .string(let i): stack[depth] = stringOperands[i]; depth += 1
            case .tuple(let i): stack[depth] = .tuple(Int32(-(i + 1))); depth += 1
            case .null: stack[depth] = .null; depth += 1
            case .field(let f):
                let tag: UInt8, payload: UInt64
                if dense[f] {
                    let i = Int(slot)
                    guard i < tags[f].count else { return false }
                    tag = tags[f][i]
                    payload = bits[f][i]
                } else {
                    guard let e = sparse[f][slot] else { return false }
                    tag = e.tag.rawValue
                    payload = e.bits
                }
                switch AttributeTable.Tag(rawValue: tag) {
                case .number: stack[depth] = .number(Double(bitPattern: payload))
                case .string: stack[depth] = .string(Int32(truncatingIfNeeded: payload))
                case .null: stack[depth] = .null
                case .array: stack[depth] = .tuple(Int32(truncatingIfNeeded: payload))
                default: return false
                }
                depth += 1
            case .not:
                stack[depth - 1] = .number(truth(stack[depth - 1]) ? 0 : 1)
            case .binary(let op):
                let b = stack[depth - 1], a = stack[depth - 2]
                depth -= 1
                stack[depth - 1] = .number(apply(op, a, b))
            }
        }
        return depth == 1 && truth(stack[0])
    }

    // MARK: Column at a time

    /// A program made of field-versus-literal comparisons joined by and / or / not.
    private indirect enum Predicate {
        case compare(field: Int, op: FilterOperator, literal: FilterValue)
        case and(Predicate, Predicate), or(Predicate, Predicate), not(Predicate)
    }

    private lazy var predicate: Predicate? = Self.predicate(program, stringOperands)

    private static func predicate(_ program: [FilterInstruction], _ strings: [FilterValue]) -> Predicate? {
        enum Item { case field(Int), literal(FilterValue), predicate(Predicate) }
        var stack: [Item] = []
        for instruction in program {
            switch instruction {
            case .field(let f): stack.append(.field(f))
            case .number(let d): stack.append(.literal(.number(d)))
            case .string(let i): stack.append(.literal(strings[i]))
            case .not:
                guard case .predicate(let p)? = stack.popLast() else { return nil }
                stack.append(.predicate(.not(p)))
            case .binary(let op):
                guard let b = stack.popLast(), let a = stack.popLast() else { return nil }
                switch (op, a, b) {
                case (.and, .predicate(let x), .predicate(let y)): stack.append(.predicate(.and(x, y)))
                case (.or, .predicate(let x), .predicate(let y)): stack.append(.predicate(.or(x, y)))
                case (.greater, _, _), (.greaterOrEqual, _, _), (.less, _, _), (.lessOrEqual, _, _), (.equal, _, _), (.notEqual, _, _):
                    if case .field(let f) = a, case .literal(let v) = b {
                        stack.append(.predicate(.compare(field: f, op: op, literal: v)))
                    } else if case .literal(let v) = a, case .field(let f) = b {
                        let flipped: FilterOperator = [.greater: .less, .less: .greater, .greaterOrEqual: .lessOrEqual,
                                                       .lessOrEqual: .greaterOrEqual][op] ?? op
                        stack.append(.predicate(.compare(field: f, op: flipped, literal: v)))
                    } else {
                        return nil
                    }
                default: return nil
                }
            case .tuple, .null: return nil
            }
        }
        guard stack.count == 1, case .predicate(let p) = stack[0] else { return nil }
        return p
    }

    /// The slots below `count` that pass, computed a column at a time into bitmaps (a tight loop per
    /// comparison instead of the interpreter per slot); nil when the program is not comparisons of a
    /// field with a literal joined by and / or / not (then callers test slot by slot). Same semantics as
    /// `matches(slot:)`, including "a missing field fails the whole expression".
    public func matchingSlots(below count: Int) -> [UInt32]? {
        guard let predicate else { return nil }
        if matchesNothing || count == 0 { return [] }
        let words = (count + 63) / 64
        // Slots where every field the expression names is readable.
        var present = [UInt64](repeating: ~0, count: words)
        for f in tags.indices {
            var has = [UInt64](repeating: 0, count: words)
            if dense[f] {
                // Tight loop over the tag bytes: a slot has the field when its tag is neither absent nor
                // unsupported. `has` has `words` = ceil(count / 64) words and i < count, so i >> 6 is in range.
                let unsupported = AttributeTable.Tag.unsupported.rawValue
                tags[f].withUnsafeBufferPointer { t in
                    has.withUnsafeMutableBufferPointer { h in
                        for i in 0..<min(count, t.count) where t[i] != 0 && t[i] != unsupported { h[i >> 6] |= 1 << UInt64(i & 63) }
                    }
                }
            } else {
                forEachEntry(f, below: count) { slot, tag, _ in
                    if tag != AttributeTable.Tag.unsupported.rawValue { has[slot >> 6] |= 1 << UInt64(slot & 63) }
                }
            }
            for w in 0..<words { present[w] &= has[w] }
        }
        var result = evaluate(predicate, words: words, count: count)
        var out: [UInt32] = []
        for w in 0..<words {
            var bits = result[w] & present[w]
            while bits != 0 {
                let b = bits.trailingZeroBitCount
                out.append(UInt32(w * 64 + b))
                bits &= bits - 1
            }
        }
        result.removeAll()
        return out
    }

    private func evaluate(_ p: Predicate, words: Int, count: Int) -> [UInt64] {
        switch p {
        case .and(let x, let y):
            var a = evaluate(x, words: words, count: count)
            let b = evaluate(y, words: words, count: count)
            for w in 0..<words { a[w] &= b[w] }
            return a
        case .or(let x, let y):
            var a = evaluate(x, words: words, count: count)
            let b = evaluate(y, words: words, count: count)
            for w in 0..<words { a[w] |= b[w] }
            return a
        case .not(let x):
            var a = evaluate(x, words: words, count: count)
            for w in 0..<words { a[w] = ~a[w] }
            return a
        case .compare(let f, let op, let literal):
            var out = [UInt64](repeating: 0, count: words)
            let c = number(literal)
            let literalIsString: Bool
            if case .string = literal { literalIsString = true } else { literalIsString = false }
            if dense[f] && !literalIsString {
                // The common case (a numeric field against a number) without a closure or a FilterValue per
                // slot: number slots compare directly, other tags take the general path below.
                compareDenseNumbers(f, op: op, c, literal: literal, count: count, into: &out)
                return out
            }
            forEachEntry(f, below: count) { slot, tag, payload in
                if generalCompare(tag: tag, payload: payload, op: op, c, literal: literal, literalIsString: literalIsString) {
                    out[slot >> 6] |= 1 << UInt64(slot & 63)
                }
            }
            return out
        }
    }

    /// `.compare` over a dense column with a numeric (or null) literal, same results as the general path.
    private func compareDenseNumbers(_ f: Int, op: FilterOperator, _ c: Double, literal: FilterValue, count: Int,
                                     into out: inout [UInt64]) {
        let numberTag = AttributeTable.Tag.number.rawValue
        tags[f].withUnsafeBufferPointer { t in
            bits[f].withUnsafeBufferPointer { b in
                out.withUnsafeMutableBufferPointer { o in
                    // Invariant: i < min(count, t.count) and o has ceil(count / 64) words; tags and bits of
                    // a dense column have the same length.
                    for i in 0..<min(count, t.count, b.count) {
                        let tag = t[i]
                        if tag == 0 { continue }
                        let pass: Bool
                        if tag == numberTag {
                            let v = Double(bitPattern: b[i])
                            switch op {
                            case .equal: pass = v == c
                            case .notEqual: pass = v != c
                            case .greater: pass = v > c
                            case .greaterOrEqual: pass = v >= c
                            case .less: pass = v < c
                            default: pass = v <= c
                            }
                        } else {
                            pass = generalCompare(tag: tag, payload: b[i], op: op, c, literal: literal, literalIsString: false)
                        }
                        if pass { o[i >> 6] |= 1 << UInt64(i & 63) }
                    }
                }
            }
        }
    }

    /// One slot's comparison, for any tag (the general path of `.compare`).
    private func generalCompare(tag: UInt8, payload: UInt64, op: FilterOperator, _ c: Double, literal: FilterValue,
                                literalIsString: Bool) -> Bool {
        let value: FilterValue
        switch AttributeTable.Tag(rawValue: tag) {
        case .number: value = .number(Double(bitPattern: payload))
        case .string: value = .string(Int32(truncatingIfNeeded: payload))
        case .null: value = .null
        case .array: value = .tuple(Int32(truncatingIfNeeded: payload))
        default: return false
        }
        switch op {
        case .equal, .notEqual:
            var same: Bool
            if case .number(let d) = value, !literalIsString { same = d == c } else { same = equal(value, literal) }
            if op == .notEqual { same.toggle() }
            return same
        default:
            let v: Double
            if case .number(let d) = value { v = d } else { v = number(value) }
            switch op {
            case .greater: return v > c
            case .greaterOrEqual: return v >= c
            case .less: return v < c
            default: return v <= c
            }
        }
    }

    /// Calls `body(slot, tag, payload)` for each slot below `count` that has field `f` (any tag but absent).
    private func forEachEntry(_ f: Int, below count: Int, _ body: (Int, UInt8, UInt64) -> Void) {
        if dense[f] {
            tags[f].withUnsafeBufferPointer { t in
                bits[f].withUnsafeBufferPointer { b in
                    for i in 0..<min(count, t.count) where t[i] != 0 { body(i, t[i], b[i]) }
                }
            }
        } else {
            for (slot, e) in sparse[f] where Int(slot) < count { body(Int(slot), e.tag.rawValue, e.bits) }
        }
    }

    // MARK: Redis' conversions

    private func bytes(_ ref: Int32) -> [UInt8] { ref >= 0 ? table.strings[Int(ref)] : literalStrings[Int(-ref - 1)] }

    private func elements(_ ref: Int32) -> [FilterValue] { ref >= 0 ? table.arrays[Int(ref)] : literalTuples[Int(-ref - 1)] }

    private func number(_ v: FilterValue) -> Double {
        switch v {
        case .number(let d): return d
        case .string(let ref): return ref >= 0 ? table.stringNumbers[Int(ref)] : literalNumbers[Int(-ref - 1)]
        case .null, .tuple: return 0
        }
    }

    private func truth(_ v: FilterValue) -> Bool {
        switch v {
        case .number(let d): return d != 0
        case .string(let ref): return !bytes(ref).isEmpty
        case .null: return false
        case .tuple: return true
        }
    }

    private func equal(_ a: FilterValue, _ b: FilterValue) -> Bool {
        switch (a, b) {
        case (.string(let x), .string(let y)): return x == y || (!(x >= 0 && y >= 0) && bytes(x) == bytes(y))
        case (.number(let x), .number(let y)): return x == y
        case (.null, .null): return true
        case (.null, _), (_, .null): return false
        default: return number(a) == number(b)
        }
    }

    private func apply(_ op: FilterOperator, _ a: FilterValue, _ b: FilterValue) -> Double {
        switch op {
        case .or: return truth(a) || truth(b) ? 1 : 0
        case .and: return truth(a) && truth(b) ? 1 : 0
        case .greater: return number(a) > number(b) ? 1 : 0
        case .greaterOrEqual: return number(a) >= number(b) ? 1 : 0
        case .less: return number(a) < number(b) ? 1 : 0
        case .lessOrEqual: return number(a) <= number(b) ? 1 : 0
        case .equal: return equal(a, b) ? 1 : 0
        case .notEqual: return equal(a, b) ? 0 : 1
        case .isIn:
            if case .tuple(let ref) = b { return elements(ref).contains { equal(a, $0) } ? 1 : 0 }
            if case .string(let x) = a, case .string(let y) = b { return Self.contains(bytes(y), bytes(x)) ? 1 : 0 }
            return 0
        case .add: return number(a) + number(b)
        case .subtract: return number(a) - number(b)
        case .multiply: return number(a) * number(b)
        case .divide: return number(a) / number(b)
        case .modulo: return fmod(number(a), number(b))
        case .power: return pow(number(a), number(b))
        }
    }

    private static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        if needle.isEmpty { return true }
        guard needle.count <= haystack.count else { return false }
        for start in 0...(haystack.count - needle.count) where haystack[start] == needle[0] {
            if haystack[start..<start + needle.count].elementsEqual(needle) { return true }
        }
        return false
    }
}
