import Foundation
import XCTest
@testable import LatentFilter

/// Runs `expression` against one element holding `json`.
private func evaluate(_ expression: String, _ json: String) throws -> Bool {
    let table = AttributeTable()
    table.set(slot: 0, attributes: Array(json.utf8))
    return BoundFilter(try FilterExpression(expression), table: table).matches(slot: 0)
}

final class FilterExpressionTests: XCTestCase {
    let movie = #"{"year": 1984, "title": "The Matrix", "rating": 8.5, "genre": "scifi", "tags": ["a", "b", 3], "seen": true, "n": null, "num": "42", "empty": "", "obj": {"x": 1}}"#

    func testEveryOperator() throws {
        let cases: [(String, Bool)] = [
            (".year > 1980", true), (".year >= 1984", true), (".year < 1984", false), (".year <= 1984", true),
            (".year == 1984", true), (".year != 1984", false), (".genre == 'scifi'", true), (".genre == \"scifi\"", true),
            (".genre != 'drama'", true), (".year + 16 == 2000", true), (".year - 4 == 1980", true), (".rating * 2 == 17", true),
            (".year / 2 == 992", true), (".year % 100 == 84", true), ("2 ** 10 == 1024", true), ("2 ** 3 ** 2 == 512", true),
            ("(2 ** 3) ** 2 == 64", true), ("not .seen", false), ("!.seen", false), ("!(.year > 2000)", true),
            (".year > 1980 and .rating > 8", true), (".year > 1980 && .rating > 9", false), (".year > 2000 or .rating > 8", true),
            (".year > 2000 || .rating > 9", false), ("'a' in .tags", true), ("3 in .tags", true), ("'c' in .tags", false),
            (".genre in ['scifi', 'drama']", true), (".year in [1984, 1999]", true), (".year in [1, 2]", false),
            ("'Mat' in .title", true), ("'mat' in .title", false), ("1 + 2 * 3 == 7", true), ("(1 + 2) * 3 == 9", true),
            ("1 < 2 == 1", true), (".seen == 1", true), (".seen == true", true), (".seen == false", false),
            ("-5 + 10 == 5", true), ("10 -5 == 5", true), ("(10) -5 == 5", true), (".n == null", true), (".year == null", false),
            ("null == null", true), (".num == 42", true), (".num > 40", true), (".title > 1", false), (".title == 0", true),
            (".empty", false), (".title", true), (".tags", true), ("not not .seen", true), ("1 / 0 > 1e308", true),
            ("0.5", true), ("0", false), ("''", false), ("'x'", true), ("[]", true), ("null", false),
            ("not 2 ** 2 == 0", true), ("1 in 'x'", false), ("'' in .title", true),
        ]
        for (expression, expected) in cases {
            XCTAssertEqual(try evaluate(expression, movie), expected, expression)
        }
    }

    func testMissingFieldsAndUnsupportedValuesMatchNothing() throws {
        // A missing field fails the whole expression in Redis, even under `or` or `not`.
        XCTAssertFalse(try evaluate(".missing == 1 or 1", movie))
        XCTAssertFalse(try evaluate("not .missing", movie))
        XCTAssertFalse(try evaluate(".obj == 1 or 1", movie), "an object value cannot be read")
        XCTAssertFalse(try evaluate(".year > 1", "not json at all"))
        XCTAssertFalse(try evaluate(".year > 1", "[1, 2]"))
        XCTAssertFalse(try evaluate(".year > 1", #"{"year": 5"#), "truncated JSON has no fields")
        XCTAssertTrue(try evaluate(".year > 1", #"{"year": 5, "year": 0}"#), "the first of repeated keys wins, as in Redis")
        XCTAssertTrue(try evaluate(".s == 'caf\u{E9} \"q\"'", #"{"s": "caf\u00e9 \"q\""}"#), "JSON escapes are decoded")
        XCTAssertTrue(try evaluate(#".s == 'it\'s'"#, #"{"s": "it's"}"#), "literal escapes are decoded")
        XCTAssertTrue(try evaluate("1 == 1", "nothing"), "no selector: attributes do not matter")
    }

    func testMalformedExpressionsPointAtTheColumn() {
        let cases: [(String, Int)] = [
            ("", 1), (".year >", 8), (".year > > 1", 9), ("(.year > 1", 11), (".year > 1)", 10), ("1 2", 3),
            ("'open", 1), ("[1, 2", 6), ("[1, x]", 5), (".year === 1", 9), ("foo", 1), (".year > 1 AND 1", 11),
            ("()", 2), ("1 +", 4), ("#", 1), ("1e", 1), ("- .x", 1),
        ]
        for (expression, column) in cases {
            XCTAssertThrowsError(try FilterExpression(expression), expression) { error in
                XCTAssertEqual((error as? FilterSyntaxError)?.column, column, "\(expression): \(error)")
            }
        }
        let deep = String(repeating: "(", count: 500) + "1" + String(repeating: ")", count: 500)
        XCTAssertThrowsError(try FilterExpression(deep), "nesting is bounded: no stack overflow")
        let notChain = String(repeating: "!", count: 10_000) + "1"
        XCTAssertThrowsError(try FilterExpression(notChain))
    }

    /// Random expression trees printed with only the parentheses precedence needs, parsed, and evaluated
    /// against random elements, compared with a tree-walking reference written from Redis' rules.
    func testRandomExpressionsAgainstReferenceEvaluator() throws {
        var rng = SplitMix(seed: 7)
        let table = AttributeTable()
        var objects: [[String: AttributeValue]] = []
        for slot in 0..<40 {
            var fields: [String: AttributeValue] = [:]
            var parts: [String] = []
            for name in ["a", "b", "s"] where rng.next() % 5 != 0 {
                let (value, json) = Reference.randomValue(&rng)
                fields[name] = value
                parts.append("\"\(name)\": \(json)")
            }
            objects.append(fields)
            table.set(slot: UInt32(slot), attributes: Array(("{" + parts.joined(separator: ", ") + "}").utf8))
        }
        var checked = 0
        for _ in 0..<3_000 {
            let tree = Reference.randomTree(&rng, depth: 4)
            let text = tree.text(parentPrecedence: -1, rightSide: false)
            let bound = BoundFilter(try FilterExpression(text), table: table)
            for (slot, fields) in objects.enumerated() {
                let expected = Reference.truth(tree.value(fields))
                XCTAssertEqual(bound.matches(slot: UInt32(slot)), expected ?? false, "\(text) on \(fields)")
                checked += 1
            }
        }
        XCTAssertEqual(checked, 120_000)
    }

    /// The column-at-a-time path (`matchingSlots`) against the interpreter, on random and/or/not trees of
    /// field-versus-literal comparisons over dense and sparse columns with every value type.
    func testColumnWiseEvaluationEqualsTheInterpreter() throws {
        var rng = SplitMix(seed: 11)
        let table = AttributeTable()
        for slot in 0..<300 {
            var parts: [String] = []
            for name in ["a", "b", "s"] where rng.next() % 4 != 0 { parts.append("\"\(name)\": \(Reference.randomValue(&rng).1)") }
            if slot % 50 == 0 { parts.append("\"rare\": \(slot % 3)") }  // a sparse column
            if slot % 7 == 0 { parts.append("\"a\": {\"x\": 1}") }   // unsupported (repeated key: the first wins)
            table.set(slot: UInt32(slot), attributes: Array(("{" + parts.joined(separator: ", ") + "}").utf8))
        }
        table.set(slot: 13, attributes: nil)
        func leaf() -> String {
            let field = ["a", "b", "s", "rare"][Int(rng.next() % 4)]
            let op = ["==", "!=", "<", "<=", ">", ">="][Int(rng.next() % 6)]
            let literal = ["0", "1", "-1", "3", "'x'", "''", "'3'", "2.5"][Int(rng.next() % 8)]
            return rng.next() % 2 == 0 ? ".\(field) \(op) \(literal)" : "\(literal) \(op) .\(field)"
        }
        func tree(_ depth: Int) -> String {
            if depth == 0 || rng.next() % 3 == 0 { return leaf() }
            switch rng.next() % 3 {
            case 0: return "(\(tree(depth - 1)) and \(tree(depth - 1)))"
            case 1: return "(\(tree(depth - 1)) or \(tree(depth - 1)))"
            default: return "not (\(tree(depth - 1)))"
            }
        }
        for _ in 0..<1_500 {
            let text = tree(3)
            let bound = BoundFilter(try FilterExpression(text), table: table)
            let columnWise = try XCTUnwrap(bound.matchingSlots(below: 300), text)
            XCTAssertEqual(columnWise, (0..<300).filter { bound.matches(slot: UInt32($0)) }.map { UInt32($0) }, text)
        }
        XCTAssertNil(BoundFilter(try FilterExpression(".a + 1 > 2"), table: table).matchingSlots(below: 300), "other shapes fall back")
        XCTAssertNil(BoundFilter(try FilterExpression("'x' in .s"), table: table).matchingSlots(below: 300))
    }

    func testTableReusesStringCodesAndColumnsTurnDense() {
        let table = AttributeTable()
        for slot in 0..<1_000 { table.set(slot: UInt32(slot), attributes: Array(#"{"k": "v\#(slot % 10)", "x": \#(slot)}"#.utf8)) }
        XCTAssertTrue(table.columns.allSatisfy { $0.dense })
        XCTAssertEqual(table.elementsWithFields, 1_000)
        let bound = BoundFilter(try! FilterExpression(".k == 'v3' and .x < 100"), table: table)
        XCTAssertEqual((0..<1_000).filter { bound.matches(slot: UInt32($0)) }, [3, 13, 23, 33, 43, 53, 63, 73, 83, 93])
        for slot in 0..<1_000 { table.set(slot: UInt32(slot), attributes: nil) }
        XCTAssertEqual(table.elementsWithFields, 0)
        XCTAssertEqual(table.strings.filter { !$0.isEmpty }.count, 0, "released strings leave the dictionary")
        table.set(slot: 5, attributes: Array(#"{"k": "new", "rare-field_1": [1, ["x"]]}"#.utf8))
        XCTAssertLessThanOrEqual(table.strings.count, 10, "freed codes are reused")
        XCTAssertTrue(BoundFilter(try! FilterExpression(".k == 'new' and 1 in .rare-field_1"), table: table).matches(slot: 5))
        XCTAssertFalse(BoundFilter(try! FilterExpression(".nope == 1"), table: table).matches(slot: 5))
    }
}

struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// An independent evaluator: a tree over `AttributeValue`s, no dictionary codes, no stack.
indirect enum Reference {
    case number(Double), string(String), null, tuple([Reference]), field(String)
    case not(Reference), binary(String, Reference, Reference)

    static let precedence: [String: Int] = ["or": 0, "||": 0, "and": 1, "&&": 1, ">": 2, ">=": 2, "<": 2, "<=": 2, "==": 2,
                                             "!=": 2, "in": 2, "+": 3, "-": 3, "*": 4, "/": 4, "%": 4, "**": 5]

    static func randomValue(_ rng: inout SplitMix) -> (AttributeValue, String) {
        switch rng.next() % 5 {
        case 0: let n = Double(Int(rng.next() % 7) - 2); return (.number(n), String(Int(n)))
        case 1: let s = ["", "x", "xy", "3", "y"][Int(rng.next() % 5)]; return (.string(Array(s.utf8)), "\"\(s)\"")
        case 2: let yes = rng.next() % 2 == 0; return (.number(yes ? 1 : 0), yes ? "true" : "false")
        case 3: return (.null, "null")
        default: return (.array([.number(1), .string(Array("x".utf8))]), "[1, \"x\"]")
        }
    }

    static func randomTree(_ rng: inout SplitMix, depth: Int) -> Reference {
        if depth == 0 || rng.next() % 3 == 0 {
            switch rng.next() % 6 {
            case 0: return .number(Double(Int(rng.next() % 5) - 1))
            case 1: return .string(["", "x", "3", "xy"][Int(rng.next() % 4)])
            case 2: return .field(["a", "b", "s"][Int(rng.next() % 3)])
            case 3: return .tuple([.number(1), .string("x")])
            case 4: return .null
            default: return .field(["a", "b"][Int(rng.next() % 2)])
            }
        }
        if rng.next() % 6 == 0 { return .not(randomTree(&rng, depth: depth - 1)) }
        let ops = Array(precedence.keys).sorted()
        return .binary(ops[Int(rng.next() % UInt64(ops.count))], randomTree(&rng, depth: depth - 1), randomTree(&rng, depth: depth - 1))
    }

    /// Source text with parentheses only where precedence or associativity requires them.
    func text(parentPrecedence: Int, rightSide: Bool) -> String {
        switch self {
        case .number(let d): return String(Int(d))
        case .string(let s): return "'\(s)'"
        case .null: return "null"
        case .tuple: return "[1, 'x']"
        case .field(let f): return "." + f
        case .not(let inner): return "not " + inner.text(parentPrecedence: 6, rightSide: false)
        case .binary(let op, let l, let r):
            let p = Reference.precedence[op]!
            let rightAssociative = op == "**"
            let body = l.text(parentPrecedence: rightAssociative ? p + 1 : p, rightSide: false) + " \(op) "
                + r.text(parentPrecedence: rightAssociative ? p : p + 1, rightSide: true)
            return p < parentPrecedence ? "(" + body + ")" : body
        }
    }

    enum V: Equatable { case num(Double), str(String), null, tuple([V]) }

    static func convert(_ a: AttributeValue) -> V? {
        switch a {
        case .number(let d): return .num(d)
        case .string(let s): return .str(String(decoding: s, as: UTF8.self))
        case .null: return .null
        case .array(let items): return .tuple(items.compactMap(convert))
        case .unsupported: return nil
        }
    }

    static func num(_ v: V) -> Double {
        switch v {
        case .num(let d): return d
        case .str(let s): return AttributeTable.numericValue(Array(s.utf8))
        default: return 0
        }
    }

    static func truth(_ v: V?) -> Bool? {
        guard let v else { return nil }
        switch v {
        case .num(let d): return d != 0
        case .str(let s): return !s.isEmpty
        case .null: return false
        case .tuple: return true
        }
    }

    static func eq(_ a: V, _ b: V) -> Bool {
        switch (a, b) {
        case (.str(let x), .str(let y)): return x == y
        case (.num(let x), .num(let y)): return x == y
        case (.null, .null): return true
        case (.null, _), (_, .null): return false
        default: return num(a) == num(b)
        }
    }

    /// nil when a selector fails (the whole expression is then false).
    func value(_ fields: [String: AttributeValue]) -> V? {
        switch self {
        case .number(let d): return .num(d)
        case .string(let s): return .str(s)
        case .null: return .null
        case .tuple: return .tuple([.num(1), .str("x")])
        case .field(let f): return fields[f].flatMap(Reference.convert)
        case .not(let inner):
            guard let v = inner.value(fields) else { return nil }
            return .num(Reference.truth(v)! ? 0 : 1)
        case .binary(let op, let l, let r):
            guard let a = l.value(fields), let b = r.value(fields) else { return nil }
            let x = Reference.num(a), y = Reference.num(b)
            switch op {
            case "or", "||": return .num(Reference.truth(a)! || Reference.truth(b)! ? 1 : 0)
            case "and", "&&": return .num(Reference.truth(a)! && Reference.truth(b)! ? 1 : 0)
            case ">": return .num(x > y ? 1 : 0)
            case ">=": return .num(x >= y ? 1 : 0)
            case "<": return .num(x < y ? 1 : 0)
            case "<=": return .num(x <= y ? 1 : 0)
            case "==": return .num(Reference.eq(a, b) ? 1 : 0)
            case "!=": return .num(Reference.eq(a, b) ? 0 : 1)
            case "in":
                if case .tuple(let items) = b { return .num(items.contains { Reference.eq(a, $0) } ? 1 : 0) }
                if case .str(let s) = a, case .str(let t) = b { return .num(s.isEmpty || t.contains(s) ? 1 : 0) }
                return .num(0)
            case "+": return .num(x + y)
            case "-": return .num(x - y)
            case "*": return .num(x * y)
            case "/": return .num(x / y)
            case "%": return .num(fmod(x, y))
            default: return .num(pow(x, y))
            }
        }
    }
}
