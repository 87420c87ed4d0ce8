/// A compiled FILTER expression: the language of Redis 8 vector sets (`modules/vector-sets/expr.c`).
///
/// Values are numbers, strings, `null`, tuples (`[1, "a"]`, literals only) and `.field` selectors that
/// read a top-level field of the element's JSON attributes. Operators, from the loosest binding:
///
///     or ||          (0)
///     and &&         (1)
///     > >= < <= == != in    (2, left associative)
///     + -            (3)
///     * / %          (4)
///     **             (5, right associative)
///     not !          (6, prefix)
///
/// Evaluation follows Redis: arithmetic and ordering convert both sides to numbers (a string that is a
/// whole number converts to it, anything else to 0; booleans in JSON are 1 and 0); `==` compares
/// strings with strings and numbers with numbers, `null` equals only `null`, and mixed pairs compare as
/// numbers; `a in [..]` is membership by `==`, `a in b` on two strings is "a is a substring of b". The
/// result is true when it is a non-zero number, a non-empty string or a tuple. A selector whose field is
/// missing (or holds an object) makes the whole expression false: no error at query time.
///
/// Differences from Redis, all on inputs Redis rejects or answers oddly: postfix sequences such as
/// `1 2 +` (accepted by Redis' shunting-yard compiler) are syntax errors; escapes in string literals
/// (`\"`, `\'`, `\\`, `\n`, `\t`, `\r`) are decoded, so `'it\'s'` equals the JSON string "it's";
/// `true` and `false` are literals for 1 and 0; words and symbols are separate tokens, so `(.a == null)`
/// parses (Redis reads `null)` as one unknown word).
public struct FilterExpression: Sendable, Equatable {
    /// The expression as given.
    public let source: String
    /// The program in postfix order (operands before their operator).
    public let program: [FilterInstruction]
    /// String literals, referenced by index from `program` and `tuples`.
    public let strings: [[UInt8]]
    /// Tuple literals.
    public let tuples: [[FilterLiteral]]
    /// Field names read by `.field` selectors, referenced by index.
    public let fields: [String]

    /// Compiles `source`; throws `FilterSyntaxError` with the 1-based column where parsing failed.
    public init(_ source: String) throws {
        var parser = FilterParser(Array(source.utf8))
        try parser.parse()
        self.source = source
        program = parser.program
        strings = parser.strings
        tuples = parser.tuples
        fields = parser.fields
    }

    /// Deepest value stack the program needs (for the evaluator's fixed stack).
    public var stackDepth: Int {
        var depth = 0, deepest = 0
        for instruction in program {
            switch instruction {
            case .number, .string, .tuple, .null, .field: depth += 1
            case .not: break
            case .binary: depth -= 1
            }
            deepest = max(deepest, depth)
        }
        return deepest
    }
}

/// A literal inside a tuple.
public enum FilterLiteral: Sendable, Equatable {
    case number(Double)
    /// Index into `FilterExpression.strings`.
    case string(Int)
}

public enum FilterOperator: UInt8, Sendable, Equatable {
    case or, and, greater, greaterOrEqual, less, lessOrEqual, equal, notEqual, isIn, add, subtract,
         multiply, divide, modulo, power

    var precedence: Int {
        switch self {
        case .or: return 0
        case .and: return 1
        case .greater, .greaterOrEqual, .less, .lessOrEqual, .equal, .notEqual, .isIn: return 2
        case .add, .subtract: return 3
        case .multiply, .divide, .modulo: return 4
        case .power: return 5
        }
    }
}

public enum FilterInstruction: Sendable, Equatable {
    case number(Double)
    case string(Int)
    case tuple(Int)
    case null
    /// Index into `FilterExpression.fields`.
    case field(Int)
    case not
    case binary(FilterOperator)
}

/// A malformed FILTER expression: where (1-based column, in bytes) and why.
public struct FilterSyntaxError: Error, Equatable, CustomStringConvertible {
    public let column: Int
    public let reason: String
    public var description: String { "syntax error in FILTER expression at column \(column): \(reason)" }
}

/// Tokens and a precedence-climbing parser in one pass.
struct FilterParser {
    private enum Token: Equatable {
        case number(Double), string([UInt8]), tuple([FilterLiteral]), field(String), null
        case not, open, close, binary(FilterOperator), end
    }

    private let text: [UInt8]
    private var position = 0
    private var token: Token = .end
    private var tokenStart = 0
    /// The previous token, for Redis' rule on `-`: it starts a number at the beginning and after an
    /// operator other than `)`; elsewhere it is the subtraction operator.
    private var previousIsOperand = false
    private var stringIndex: [[UInt8]: Int] = [:]
    private(set) var program: [FilterInstruction] = []
    private(set) var strings: [[UInt8]] = []
    private(set) var tuples: [[FilterLiteral]] = []
    private(set) var fields: [String] = []
    /// Nesting of parentheses and `not`: bounded so a hostile expression cannot exhaust the stack.
    private var depth = 0
    static let maxDepth = 200
    static let maxLength = 64 * 1024

    init(_ text: [UInt8]) { self.text = text }

    mutating func parse() throws {
        guard text.count <= Self.maxLength else {
            throw FilterSyntaxError(column: 1, reason: "the expression is \(text.count) bytes; at most \(Self.maxLength) are allowed")
        }
        try advance()
        if token == .end { throw error("the expression is empty") }
        try parseBinary(minimum: 0)
        guard token == .end else { throw error("unexpected \(describe(token)) after a complete expression") }
    }

    private func error(_ reason: String) -> FilterSyntaxError { FilterSyntaxError(column: tokenStart + 1, reason: reason) }

    private func describe(_ t: Token) -> String {
        let shown = String(decoding: text[tokenStart..<min(position, text.count)], as: UTF8.self)
        return t == .end ? "end of expression" : "'\(shown)'"
    }

    // MARK: Grammar

    /// Binary operators at or above `minimum` precedence; `**` is right associative.
    private mutating func parseBinary(minimum: Int) throws {
        try parseUnary()
        while case .binary(let op) = token, op.precedence >= minimum {
            try advance()
            // Right operands recurse (`2 ** 2 ** ...` as deep as it is long): bounded like parentheses.
            depth += 1
            defer { depth -= 1 }
            guard depth <= Self.maxDepth else { throw error("nested more than \(Self.maxDepth) levels deep") }
            try parseBinary(minimum: op == .power ? op.precedence : op.precedence + 1)
            program.append(.binary(op))
        }
    }

    private mutating func parseUnary() throws {
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maxDepth else { throw error("nested more than \(Self.maxDepth) levels deep") }
        if token == .not {
            try advance()
            try parseUnary()
            program.append(.not)
            return
        }
        switch token {
        case .number(let v): program.append(.number(v))
        case .string(let s): program.append(.string(intern(s)))
        case .tuple(let t): tuples.append(t); program.append(.tuple(tuples.count - 1))
        case .null: program.append(.null)
        case .field(let name):
            if let i = fields.firstIndex(of: name) { program.append(.field(i)) } else { fields.append(name); program.append(.field(fields.count - 1)) }
        case .open:
            try advance()
            if token == .close { throw error("empty parentheses") }
            try parseBinary(minimum: 0)
            guard token == .close else { throw error("expected ')' but found \(describe(token))") }
        case .end: throw error("expected a value but the expression ended")
        default: throw error("expected a value but found \(describe(token))")
        }
        try advance()
    }

    private mutating func intern(_ s: [UInt8]) -> Int {
        if let i = stringIndex[s] { return i }
        strings.append(s)
        stringIndex[s] = strings.count - 1
        return strings.count - 1
    }

    // MARK: Tokens

    private static func isSpace(_ c: UInt8) -> Bool { c == 32 || (c >= 9 && c <= 13) }
    private static func isDigit(_ c: UInt8) -> Bool { c >= 48 && c <= 57 }
    private static func isAlpha(_ c: UInt8) -> Bool { (c | 0x20) >= 97 && (c | 0x20) <= 122 }
    private static func isOperatorChar(_ c: UInt8) -> Bool { Array("+-*%/!()<>=|&".utf8).contains(c) }
    private static func isFieldChar(_ c: UInt8) -> Bool { isAlpha(c) || isDigit(c) || c == 95 || c == 45 }

    private func peek(_ offset: Int = 0) -> UInt8? {
        position + offset < text.count ? text[position + offset] : nil
    }

    private mutating func advance() throws {
        while let c = peek(), Self.isSpace(c) { position += 1 }
        tokenStart = position
        guard let c = peek() else { token = .end; return }
        let minusStartsNumber = !previousIsOperand
        if Self.isDigit(c) || (c == 45 && minusStartsNumber && peek(1).map(Self.isDigit) == true) {
            token = .number(try number())
        } else if c == 34 || c == 39 {
            token = .string(try quoted())
        } else if c == 46, let next = peek(1), Self.isFieldChar(next) {
            position += 1
            let start = position
            while let ch = peek(), Self.isFieldChar(ch) { position += 1 }
            token = .field(String(decoding: text[start..<position], as: UTF8.self))
        } else if c == 91 {
            token = .tuple(try tuple())
        } else if Self.isAlpha(c) || Self.isOperatorChar(c) {
            token = try operatorOrWord()
        } else {
            throw FilterSyntaxError(column: position + 1, reason: "unexpected character '\(String(decoding: [c], as: UTF8.self))'")
        }
        switch token {
        case .number, .string, .tuple, .field, .null, .close: previousIsOperand = true
        default: previousIsOperand = false
        }
    }

    /// Digits, `.`, `e`/`E` and a leading `-`, as Redis reads them; the whole run must be a number.
    private mutating func number() throws -> Double {
        let start = position
        while let c = peek(), Self.isDigit(c) || c == 46 || c == 101 || c == 69 || (c == 45 && position == start) {
            position += 1
        }
        let run = String(decoding: text[start..<position], as: UTF8.self)
        guard let v = Double(run), v.isFinite || run.contains("e") || run.contains("E") else {
            throw FilterSyntaxError(column: start + 1, reason: "'\(run)' is not a number")
        }
        return v
    }

    private mutating func quoted() throws -> [UInt8] {
        let start = position
        let quote = text[position]
        position += 1
        var out: [UInt8] = []
        while let c = peek() {
            if c == 92, let next = peek(1) {
                switch next {
                case 110: out.append(10)
                case 116: out.append(9)
                case 114: out.append(13)
                default: out.append(next)
                }
                position += 2
                continue
            }
            position += 1
            if c == quote { return out }
            out.append(c)
        }
        throw FilterSyntaxError(column: start + 1, reason: "string not terminated")
    }

    /// `[` literal (`,` literal)* `]`, numbers and strings only, as in Redis.
    private mutating func tuple() throws -> [FilterLiteral] {
        position += 1
        var items: [FilterLiteral] = []
        while true {
            while let c = peek(), Self.isSpace(c) { position += 1 }
            guard let c = peek() else { throw FilterSyntaxError(column: position + 1, reason: "tuple not closed with ']'") }
            if c == 93 { position += 1; return items }
            if Self.isDigit(c) || c == 45 {
                items.append(.number(try number()))
            } else if c == 34 || c == 39 {
                items.append(.string(intern(try quoted())))
            } else {
                throw FilterSyntaxError(column: position + 1, reason: "tuples hold only numbers and strings")
            }
            while let c = peek(), Self.isSpace(c) { position += 1 }
            guard let sep = peek() else { throw FilterSyntaxError(column: position + 1, reason: "tuple not closed with ']'") }
            if sep == 93 { position += 1; return items }
            guard sep == 44 else { throw FilterSyntaxError(column: position + 1, reason: "expected ',' or ']' in a tuple") }
            position += 1
        }
    }

    /// A word (a run of letters) must be one of the word operators or literals; a run of symbols is
    /// read as its longest prefix that is an operator (so `!(` is `!` then `(`). Redis reads letters and
    /// symbols as one run, which makes `(.a == null)` a syntax error (`null)` is no word); here it parses.
    private mutating func operatorOrWord() throws -> Token {
        let start = position
        if Self.isAlpha(text[start]) {
            var end = start
            while end < text.count, Self.isAlpha(text[end]) { end += 1 }
            let word = String(decoding: text[start..<end], as: UTF8.self)
            let words: [String: Token] = ["not": .not, "in": .binary(.isIn), "and": .binary(.and), "or": .binary(.or),
                                          "null": .null, "true": .number(1), "false": .number(0)]
            guard let t = words[word] else {
                throw FilterSyntaxError(column: start + 1, reason: "unknown word '\(word)' (operators are lower case: and or not in)")
            }
            position = end
            return t
        }
        // The longest symbol operator has 2 characters.
        var end = start
        while end < text.count, end - start < 2, Self.isOperatorChar(text[end]) { end += 1 }
        let run = Array(text[start..<end])
        let table: [(String, Token)] = [
            ("(", .open), (")", .close), ("!", .not), ("**", .binary(.power)), ("*", .binary(.multiply)),
            ("/", .binary(.divide)), ("%", .binary(.modulo)), ("+", .binary(.add)), ("-", .binary(.subtract)),
            (">", .binary(.greater)), (">=", .binary(.greaterOrEqual)), ("<", .binary(.less)), ("<=", .binary(.lessOrEqual)),
            ("==", .binary(.equal)), ("!=", .binary(.notEqual)), ("&&", .binary(.and)), ("||", .binary(.or)),
        ]
        var best: (Int, Token)?
        for (name, t) in table {
            let bytes = Array(name.utf8)
            if bytes.count <= run.count, Array(run[0..<bytes.count]) == bytes, bytes.count > (best?.0 ?? 0) { best = (bytes.count, t) }
        }
        guard let (length, t) = best else {
            throw FilterSyntaxError(column: start + 1, reason: "unknown operator '\(String(decoding: run, as: UTF8.self))'")
        }
        position = start + length
        return t
    }
}
