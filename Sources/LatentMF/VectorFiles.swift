import Foundation

/// Vectors with their external ids, as `latentctl load` imports them.
public struct LabeledVectors: Sendable {
    public var ids: [String]
    public var matrix: Matrix
}

/// Reads (.npy + ids file) or CSV/TSV rows `id,v1,...,vk`, and checks what a load must not accept.
public enum VectorFiles {
    /// `vectors` is a .npy file (with `ids`, one id per line) or a CSV/TSV file of `id,v1..vk` rows.
    public static func read(vectors: String, ids: String?) throws -> LabeledVectors {
        let result: LabeledVectors
        if vectors.hasSuffix(".npy") {
            guard let ids else { throw NPYError("\(vectors): a .npy matrix needs its id list (one id per line)") }
            let matrix = try NPY.read(path: vectors)
            guard let text = try? String(contentsOfFile: ids, encoding: .utf8) else { throw NPYError("cannot read \(ids)") }
            let list = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            guard list.count == matrix.rows else {
                throw NPYError("\(vectors) has \(matrix.rows) rows but \(ids) lists \(list.count) ids: they must match row for row")
            }
            result = LabeledVectors(ids: list, matrix: matrix)
        } else {
            result = try readDelimited(vectors)
        }
        try validate(result, name: vectors)
        return result
    }

    static func readDelimited(_ path: String) throws -> LabeledVectors {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw NPYError("cannot read \(path)") }
        var ids: [String] = []
        var values: [Float] = []
        var columns = -1
        for (n, line) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            if line.trimmingCharacters(in: .whitespaces).isEmpty { continue }
            let fields = line.split(whereSeparator: { $0 == "," || $0 == "\t" }).map { $0.trimmingCharacters(in: .whitespaces) }
            let numbers = fields.dropFirst().map { Float($0) }
            if n == 0 && numbers.contains(where: { $0 == nil }) { continue } // a header line
            guard fields.count >= 2, numbers.allSatisfy({ $0 != nil }) else {
                throw NPYError("\(path):\(n + 1): expected id,v1,...,vk with numbers")
            }
            if columns < 0 { columns = numbers.count }
            guard numbers.count == columns else {
                throw NPYError("\(path):\(n + 1): \(numbers.count) values, earlier rows have \(columns)")
            }
            ids.append(fields[0])
            values += numbers.map { $0! }
        }
        guard columns > 0 else { throw NPYError("\(path) holds no vectors") }
        return LabeledVectors(ids: ids, matrix: Matrix(rows: ids.count, columns: columns, values: values))
    }

    /// Duplicate ids and non-finite values are refused before anything is written.
    public static func validate(_ v: LabeledVectors, name: String) throws {
        var seen = Set<String>()
        for id in v.ids where !seen.insert(id).inserted { throw NPYError("\(name): id '\(id)' appears more than once") }
        if let bad = v.matrix.values.firstIndex(where: { !$0.isFinite }) {
            throw NPYError("\(name): row \(bad / v.matrix.columns) ('\(v.ids[bad / v.matrix.columns])') has a NaN or infinite value")
        }
    }
}
