/// Interactions grouped by row in compressed sparse row form: row r's columns are
/// `columns[offsets[r]..<offsets[r + 1]]` (sorted, each once) with `values` beside them. Built once per
/// training side (users x items and its transpose) so the solvers read contiguous memory.
public struct InteractionMatrix: Sendable {
    public let rows: Int
    public let columnCount: Int
    public private(set) var offsets: [Int]
    public private(set) var columns: [Int32]
    public private(set) var values: [Float]

    /// Rows from `ratings` by user (`byUser`) or by item. A pair given twice keeps the larger value.
    public init(_ ratings: [Rating], users: Int, items: Int, byUser: Bool) {
        rows = byUser ? users : items
        columnCount = byUser ? items : users
        var counts = [Int](repeating: 0, count: rows + 1)
        for r in ratings { counts[Int(byUser ? r.user : r.item) + 1] += 1 }
        for i in 0..<rows { counts[i + 1] += counts[i] }
        var fill = counts
        var cols = [Int32](repeating: 0, count: ratings.count)
        var vals = [Float](repeating: 0, count: ratings.count)
        for r in ratings {
            let row = Int(byUser ? r.user : r.item)
            cols[fill[row]] = byUser ? r.item : r.user
            vals[fill[row]] = r.value
            fill[row] += 1
        }
        // Sort each row by column and merge duplicates.
        var outOffsets = [0], outCols: [Int32] = [], outVals: [Float] = []
        outCols.reserveCapacity(cols.count)
        outVals.reserveCapacity(cols.count)
        for row in 0..<rows {
            let pairs = (counts[row]..<counts[row + 1]).map { (cols[$0], vals[$0]) }.sorted { $0.0 < $1.0 }
            for (c, v) in pairs {
                if outCols.count > outOffsets[row], outCols.last == c {
                    outVals[outVals.count - 1] = max(outVals[outVals.count - 1], v)
                } else {
                    outCols.append(c)
                    outVals.append(v)
                }
            }
            outOffsets.append(outCols.count)
        }
        offsets = outOffsets
        columns = outCols
        values = outVals
    }

    public var count: Int { columns.count }

    public func range(of row: Int) -> Range<Int> { offsets[row]..<offsets[row + 1] }

    /// Whether `row` holds `column` (binary search of the sorted row).
    public func contains(row: Int, column: Int32) -> Bool {
        var lo = offsets[row], hi = offsets[row + 1]
        while lo < hi {
            let mid = (lo + hi) / 2
            if columns[mid] < column { lo = mid + 1 } else { hi = mid }
        }
        return lo < offsets[row + 1] && columns[lo] == column
    }

    /// The values replaced by `transform` (ratings into confidences).
    public func mapValues(_ transform: (Float) -> Float) -> InteractionMatrix {
        var copy = self
        copy.values = values.map(transform)
        return copy
    }
}
