/// An element's id exactly as the client sent it: bytes, not text. Two ids are equal when their bytes are,
/// so ids that are not valid UTF-8 (`\xff`, `\xfe`) stay distinct and are replied as sent. Ordered by
/// bytes (ties in search results), which for UTF-8 text is the order of its code points.
///
/// Lives in LatentVectors because every layer shares it (storage keys, engine maps, protocol replies).
public struct ElementID: Hashable, Comparable, Sendable, ExpressibleByStringLiteral, ExpressibleByStringInterpolation,
    CustomStringConvertible {
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) { self.bytes = bytes }
    public init<S: Sequence>(_ bytes: S) where S.Element == UInt8 { self.bytes = Array(bytes) }
    public init(_ text: String) { bytes = Array(text.utf8) }
    public init(stringLiteral value: String) { self.init(value) }

    public static func < (a: ElementID, b: ElementID) -> Bool { a.bytes.lexicographicallyPrecedes(b.bytes) }

    public var count: Int { bytes.count }

    /// For messages and logs: the text when it is valid UTF-8, otherwise with `\xHH` escapes.
    public var description: String {
        if let text = String(validating: bytes, as: UTF8.self) { return text }
        return bytes.map { $0 >= 32 && $0 < 127 ? String(UnicodeScalar($0)) : "\\x" + String($0, radix: 16).leftPad(2) }.joined()
    }
}

private extension String {
    func leftPad(_ n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}
