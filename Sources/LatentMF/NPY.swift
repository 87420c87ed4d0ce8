import Foundation

/// A 2-D float matrix read from or written to NumPy's .npy format, rows in C order.
public struct Matrix: Equatable, Sendable {
    public var rows: Int
    public var columns: Int
    public var values: [Float]

    public init(rows: Int, columns: Int, values: [Float]) {
        precondition(values.count == rows * columns)
        self.rows = rows
        self.columns = columns
        self.values = values
    }

    public subscript(row: Int, column: Int) -> Float { values[row * columns + column] }
    public func row(_ r: Int) -> ArraySlice<Float> { values[(r * columns)..<((r + 1) * columns)] }
}

public struct NPYError: Error, CustomStringConvertible, Equatable {
    public let description: String
    init(_ d: String) { description = d }
}

/// NumPy .npy files (format versions 1.0, 2.0 and 3.0): float32 or float64 in either byte order, C or
/// Fortran order, two dimensions. Anything else is refused with the reason.
public enum NPY {
    static let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)

    public static func read(path: String) throws -> Matrix {
        guard let data = FileManager.default.contents(atPath: path) else { throw NPYError("cannot read \(path)") }
        return try decode([UInt8](data), name: path)
    }

    public static func decode(_ bytes: [UInt8], name: String = "input") throws -> Matrix {
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else { throw NPYError("\(name) is not a .npy file (bad magic)") }
        let major = bytes[6]
        let headerLength: Int
        let headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw NPYError("\(name): truncated header") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        default:
            throw NPYError("\(name): .npy format version \(major).\(bytes[7]) is not supported (1.0, 2.0, 3.0 are)")
        }
        guard bytes.count >= headerStart + headerLength else { throw NPYError("\(name): truncated header") }
        let header = String(decoding: bytes[headerStart..<(headerStart + headerLength)], as: UTF8.self)
        let descr = try field(header, "descr", name: name)
        let fortran = try field(header, "fortran_order", name: name)
        let shapeText = try field(header, "shape", name: name)
        let little: Bool
        let width: Int
        switch descr.replacingOccurrences(of: "'", with: "").replacingOccurrences(of: "\"", with: "") {
        case "<f4", "=f4", "|f4": (little, width) = (true, 4)
        case ">f4": (little, width) = (false, 4)
        case "<f8", "=f8", "|f8": (little, width) = (true, 8)
        case ">f8": (little, width) = (false, 8)
        default: throw NPYError("\(name): dtype \(descr) is not supported: save float32 or float64 (e.g. arr.astype('float32'))")
        }
        let dims = shapeText.trimmingCharacters(in: CharacterSet(charactersIn: "() ")).split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard dims.count == 2, let rows = Int(dims[0]), let columns = Int(dims[1]), rows >= 0, columns >= 1 else {
            throw NPYError("\(name): shape \(shapeText) is not 2-D: save an (n, k) matrix")
        }
        let dataStart = headerStart + headerLength
        guard bytes.count - dataStart >= rows * columns * width else {
            throw NPYError("\(name): holds \(bytes.count - dataStart) data bytes, shape \(rows)x\(columns) needs \(rows * columns * width)")
        }
        var values = [Float](repeating: 0, count: rows * columns)
        bytes.withUnsafeBytes { raw in
            for i in 0..<(rows * columns) {
                let offset = dataStart + i * width
                let v: Float
                if width == 4 {
                    let bits = raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self)
                    v = Float(bitPattern: little ? UInt32(littleEndian: bits) : UInt32(bigEndian: bits))
                } else {
                    let bits = raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
                    v = Float(Double(bitPattern: little ? UInt64(littleEndian: bits) : UInt64(bigEndian: bits)))
                }
                // Fortran order stores column after column.
                let (r, c) = fortran == "True" ? (i % rows, i / rows) : (i / columns, i % columns)
                values[r * columns + c] = v
            }
        }
        return Matrix(rows: rows, columns: columns, values: values)
    }

    /// The value text of `key` in the header dict, e.g. `'<f4'`, `False`, `(3, 2)`.
    static func field(_ header: String, _ key: String, name: String) throws -> String {
        guard let keyRange = header.range(of: "'\(key)'") ?? header.range(of: "\"\(key)\""),
              let colon = header[keyRange.upperBound...].firstIndex(of: ":") else {
            throw NPYError("\(name): header lacks '\(key)'")
        }
        var rest = header[header.index(after: colon)...].drop(while: { $0 == " " })
        if rest.first == "(" {
            guard let close = rest.firstIndex(of: ")") else { throw NPYError("\(name): bad shape in header") }
            return String(rest[...close])
        }
        if let end = rest.firstIndex(where: { $0 == "," || $0 == "}" }) { rest = rest[..<end] }
        return rest.trimmingCharacters(in: .whitespaces)
    }

    /// Version 1.0, little-endian float32, C order; the header padded so data starts on a 64-byte boundary.
    public static func encode(_ m: Matrix) -> [UInt8] {
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(m.rows), \(m.columns)), }"
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var out = magic + [1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)]
        out += Array(header.utf8)
        m.values.withUnsafeBytes { raw in
            for i in 0..<m.values.count {
                withUnsafeBytes(of: raw.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self).littleEndian) { out += $0 }
            }
        }
        return out
    }

    public static func write(_ m: Matrix, to path: String) throws {
        try Data(encode(m)).write(to: URL(fileURLWithPath: path))
    }
}
