import Foundation

/// A `FilterExpression` bound to one collection's `AttributeTable`: selectors resolved to columns,
/// string literals to dictionary codes where the string exists. `matches(slot:)` runs the program on a
/// fixed stack without allocating.
///
/// One per query and thread: it owns its stack. It reads the table, so it is used only while the
/// owning collection's read lock is held (the table does not change under it).
public final class BoundFilter {
    private let expression: FilterExpression
    private let table: AttributeTable
    /// Column of each selector; nil when no element has the field (then nothing matches).
    private let columns: [Int?]
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
        self.expression = expression
        self.table = table
        columns = expression.fields.map { table.columnOf[$0] }
        matchesNothing = columns.contains { $0 == nil }
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
        for instruction in expression.program {
            switch instruction {
            case .number(let d): stack[depth] = .number(d); depth += 1
            case .string(let i): stack[depth] = stringOperands[i]; depth += 1
            case .tuple(let i): stack[depth] = .tuple(Int32(-(i + 1))); depth += 1
            case .null: stack[depth] = .null; depth += 1
            case .field(let f):
                // `columns[f]` is non-nil: `matchesNothing` returned above otherwise.
                let e = table.columns[columns[f] ?? 0].get(slot)
                switch e.tag {
                case .number: stack[depth] = .number(Double(bitPattern: e.bits))
                case .string: stack[depth] = .string(Int32(truncatingIfNeeded: e.bits))
                case .null: stack[depth] = .null
                case .array: stack[depth] = .tuple(Int32(truncatingIfNeeded: e.bits))
                case .absent, .unsupported: return false
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
