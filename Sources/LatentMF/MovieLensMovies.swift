import Foundation

/// MovieLens `movies.csv` (`movieId,title,genres`, titles quoted when they hold commas) as JSON attributes
/// per movie id: `{"title": "Toy Story (1995)", "genres": ["Adventure", "Animation", ...]}`.
public enum MovieLensMovies {
    public static func attributes(path: String) throws -> [String: String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw RatingsError("cannot read \(path)") }
        var out: [String: String] = [:]
        for (n, line) in text.split(whereSeparator: \.isNewline).enumerated() {
            let fields = csvFields(String(line))
            if n == 0 && fields.first?.lowercased() == "movieid" { continue }
            guard fields.count >= 3 else { throw RatingsError("\(path):\(n + 1): expected movieId,title,genres") }
            let genres = fields[2] == "(no genres listed)" ? [] : fields[2].split(separator: "|").map(String.init)
            let object: [String: Any] = ["title": fields[1], "genres": genres]
            let json = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            out[fields[0]] = String(decoding: json, as: UTF8.self)
        }
        return out
    }

    /// Splits one CSV line (RFC 4180 quoting: "a, b" and doubled "" inside quotes).
    public static func csvFields(_ line: String) -> [String] {
        var fields: [String] = []
        var current = ""
        var quoted = false
        var chars = line.makeIterator()
        while let c = chars.next() {
            if quoted {
                if c == "\"" {
                    if let next = chars.next() {
                        if next == "\"" { current.append("\"") } else {
                            quoted = false
                            if next == "," { fields.append(current); current = "" } else { current.append(next) }
                        }
                    } else {
                        quoted = false
                    }
                } else {
                    current.append(c)
                }
            } else if c == "\"" {
                quoted = true
            } else if c == "," {
                fields.append(current)
                current = ""
            } else {
                current.append(c)
            }
        }
        fields.append(current)
        return fields
    }

    /// Which items each user rated, from a ratings file: user id -> item ids.
    public static func seen(ratingsPath: String) throws -> [String: [String]] {
        let data = try RatingsReader.read(path: ratingsPath)
        var out: [String: [String]] = [:]
        for r in data.ratings { out[data.userIds[Int(r.user)], default: []].append(data.itemIds[Int(r.item)]) }
        return out
    }
}
