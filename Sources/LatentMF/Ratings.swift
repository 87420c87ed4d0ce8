import Foundation

/// One observed rating, with users and items as dense indexes into `RatingsData`'s id lists.
public struct Rating: Equatable, Sendable {
    public var user: Int32
    public var item: Int32
    public var value: Float

    public init(user: Int32, item: Int32, value: Float) {
        self.user = user
        self.item = item
        self.value = value
    }
}

/// A ratings log with its external ids, in order of first appearance.
public struct RatingsData: Sendable {
    public var userIds: [String] = []
    public var itemIds: [String] = []
    public var ratings: [Rating] = []
    /// Unix times beside `ratings` (MovieLens formats); empty when the file has none (plain CSV).
    public var timestamps: [Int64] = []
    /// FNV-1a 64 of the file's bytes, recorded in model.json so a model names the data it came from.
    public var checksum: UInt64 = 0

    public init() {}

    public var userCount: Int { userIds.count }
    public var itemCount: Int { itemIds.count }
}

/// The ratings file layouts `latentctl train` reads.
public enum RatingsFormat: String, CaseIterable, Sendable {
    /// MovieLens 1M `ratings.dat`: `user::item::rating::timestamp`.
    case movielens1m = "ml-1m"
    /// MovieLens 100K `u.data`: tab-separated `user item rating timestamp`.
    case movielens100k = "ml-100k"
    /// MovieLens CSV with a header: `userId,movieId,rating,timestamp` (ml-latest, ml-latest-small).
    case movielensCSV = "ml-csv"
    /// Plain `user,item,rating` (comma or tab, optional header line).
    case plain = "plain"
}

public struct RatingsError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ d: String) { description = d }
}

public enum RatingsReader {
    /// Reads `path`; the format is detected from the first line unless given.
    public static func read(path: String, format: RatingsFormat? = nil) throws -> RatingsData {
        guard let data = FileManager.default.contents(atPath: path) else { throw RatingsError("cannot read \(path)") }
        return try parse(data, format: format, name: path)
    }

    public static func detect(firstLine: String) -> RatingsFormat {
        let lower = firstLine.lowercased()
        if firstLine.contains("::") { return .movielens1m }
        if lower.hasPrefix("userid,movieid,rating") { return .movielensCSV }
        let tabs = firstLine.split(separator: "\t", omittingEmptySubsequences: false)
        if tabs.count == 4, tabs.allSatisfy({ Double($0.trimmingCharacters(in: .whitespaces)) != nil }) { return .movielens100k }
        return .plain
    }

    public static func parse(_ data: Data, format: RatingsFormat? = nil, name: String = "input") throws -> RatingsData {
        var out = RatingsData()
        out.checksum = fnv1a(data)
        guard let text = String(data: data, encoding: .utf8) else { throw RatingsError("\(name) is not UTF-8 text") }
        var userIndex: [Substring: Int32] = [:]
        var itemIndex: [Substring: Int32] = [:]
        var lineNumber = 0
        var detected = format
        // Split on newline characters ("\r\n" is one Character in Swift, so splitting on "\n" alone would
        // see no line breaks at all in a CRLF file).
        for line in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            lineNumber += 1
            if line.trimmingCharacters(in: .whitespaces).isEmpty { continue }
            if detected == nil { detected = detect(firstLine: String(line)) }
            let fields: [Substring]
            switch detected! {
            case .movielens1m: fields = line.components(separatedBy: "::").map { Substring($0) }
            case .movielens100k: fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            case .movielensCSV: fields = line.split(separator: ",", omittingEmptySubsequences: false)
            case .plain: fields = line.split(whereSeparator: { $0 == "," || $0 == "\t" }).map { $0 }
            }
            let expected = detected == .plain ? 3 : 4
            // A header line: the CSV format's first line, or a plain file's non-numeric first line.
            if lineNumber == 1 && (detected == .movielensCSV || detected == .plain) && fields.count >= 3
                && Float(fields[2].trimmingCharacters(in: .whitespaces)) == nil { continue }
            guard fields.count >= expected else {
                throw RatingsError("\(name):\(lineNumber): expected \(expected) fields (\(detected!.rawValue) format), found \(fields.count)")
            }
            let user = Substring(fields[0].trimmingCharacters(in: .whitespaces))
            let item = Substring(fields[1].trimmingCharacters(in: .whitespaces))
            guard !user.isEmpty, !item.isEmpty else { throw RatingsError("\(name):\(lineNumber): empty user or item id") }
            guard let value = Float(fields[2].trimmingCharacters(in: .whitespaces)), value.isFinite else {
                throw RatingsError("\(name):\(lineNumber): rating '\(fields[2])' is not a number")
            }
            let u: Int32
            if let known = userIndex[user] { u = known } else {
                u = Int32(out.userIds.count)
                userIndex[user] = u
                out.userIds.append(String(user))
            }
            let i: Int32
            if let known = itemIndex[item] { i = known } else {
                i = Int32(out.itemIds.count)
                itemIndex[item] = i
                out.itemIds.append(String(item))
            }
            out.ratings.append(Rating(user: u, item: i, value: value))
            if detected != .plain {
                guard let t = Int64(fields[3].trimmingCharacters(in: .whitespaces)) else {
                    throw RatingsError("\(name):\(lineNumber): timestamp '\(fields[3].prefix(32))' is not an integer")
                }
                out.timestamps.append(t)
            }
        }
        guard !out.ratings.isEmpty else { throw RatingsError("\(name) holds no ratings") }
        return out
    }

    /// Ratings of another file (a test set) expressed in `known`'s indexes; ids it does not know become -1.
    public static func ratings(of other: RatingsData, in known: RatingsData) -> [Rating] {
        let users = Dictionary(known.userIds.enumerated().map { ($1, Int32($0)) }, uniquingKeysWith: { a, _ in a })
        let items = Dictionary(known.itemIds.enumerated().map { ($1, Int32($0)) }, uniquingKeysWith: { a, _ in a })
        return other.ratings.map {
            Rating(user: users[other.userIds[Int($0.user)]] ?? -1, item: items[other.itemIds[Int($0.item)]] ?? -1, value: $0.value)
        }
    }

    static func fnv1a(_ data: Data) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        data.withUnsafeBytes { raw in
            for b in raw { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
        }
        return h
    }
}
