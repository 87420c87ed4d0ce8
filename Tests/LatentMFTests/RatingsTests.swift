import Foundation
@testable import LatentMF
import XCTest

final class RatingsTests: XCTestCase {
    private func parse(_ s: String, _ format: RatingsFormat? = nil) throws -> RatingsData {
        try RatingsReader.parse(Data(s.utf8), format: format, name: "r")
    }

    func testEveryFormatIsDetectedAndRead() throws {
        let ml1m = try parse("1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n")
        XCTAssertEqual(RatingsReader.detect(firstLine: "1::1193::5::978300760"), .movielens1m)
        XCTAssertEqual(ml1m.userIds, ["1", "2"])
        XCTAssertEqual(ml1m.itemIds, ["1193", "661"])
        XCTAssertEqual(ml1m.ratings, [Rating(user: 0, item: 0, value: 5), Rating(user: 0, item: 1, value: 3), Rating(user: 1, item: 0, value: 4)])

        let ml100k = try parse("196\t242\t3\t881250949\r\n186\t302\t3\t891717742\r\n")
        XCTAssertEqual(RatingsReader.detect(firstLine: "196\t242\t3\t881250949"), .movielens100k)
        XCTAssertEqual(ml100k.ratings.count, 2)
        XCTAssertEqual(ml100k.itemIds, ["242", "302"])

        let csv = try parse("userId,movieId,rating,timestamp\r\n1,1,4.0,964982703\r\n1,3,4.5,964981247\r\n")
        XCTAssertEqual(RatingsReader.detect(firstLine: "userId,movieId,rating,timestamp"), .movielensCSV)
        XCTAssertEqual(csv.ratings.map(\.value), [4.0, 4.5])

        let plain = try parse("user,item,rating\nalice,m1,5\nbob,m1,1\n")
        XCTAssertEqual(plain.userIds, ["alice", "bob"])
        let tsv = try parse("alice\tm1\t5\nbob\tm2\t2\n", .plain)
        XCTAssertEqual(tsv.itemIds, ["m1", "m2"])
    }

    func testMalformedLinesNameTheirLineNumber() {
        XCTAssertThrowsError(try parse("userId,movieId,rating,timestamp\n1,1,4.0,1\n1,2\n")) {
            XCTAssertEqual("\($0)", "r:3: expected 4 fields (ml-csv format), found 2")
        }
        XCTAssertThrowsError(try parse("1::2::x::3\n", .movielens1m)) { XCTAssertTrue("\($0)".hasPrefix("r:1: rating 'x' is not a number")) }
        XCTAssertThrowsError(try parse("a,b,5\nc,d,nan\n")) { XCTAssertTrue("\($0)".hasPrefix("r:2: rating 'nan'"), "\($0)") }
        XCTAssertThrowsError(try parse("\n\n")) { XCTAssertEqual("\($0)", "r holds no ratings") }
    }

    func testTheBundledSampleReads() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../docs/examples/ml-latest-small/ratings.csv").path
        let data = try RatingsReader.read(path: path)
        XCTAssertEqual(data.ratings.count, 100_836)
        XCTAssertEqual(data.userCount, 610)
        XCTAssertEqual(data.itemCount, 9_724)
    }
}

final class NPYTests: XCTestCase {
    /// Builds a .npy file by hand, as NumPy writes it, for every supported variant.
    private func npy(major: UInt8, descr: String, fortran: Bool, shape: String, payload: [UInt8]) -> [UInt8] {
        var header = "{'descr': '\(descr)', 'fortran_order': \(fortran ? "True" : "False"), 'shape': \(shape), }"
        let prefix = major == 1 ? 10 : 12
        header += String(repeating: " ", count: (64 - (prefix + header.utf8.count + 1) % 64) % 64) + "\n"
        let n = header.utf8.count
        var out: [UInt8] = [0x93] + Array("NUMPY".utf8) + [major, 0]
        out += major == 1 ? [UInt8(n & 0xFF), UInt8(n >> 8)] : [UInt8(n & 0xFF), UInt8((n >> 8) & 0xFF), 0, 0]
        return out + Array(header.utf8) + payload
    }

    private func bytes(_ values: [Double], width: Int, little: Bool) -> [UInt8] {
        var out: [UInt8] = []
        for v in values {
            if width == 4 {
                let b = Float(v).bitPattern
                withUnsafeBytes(of: little ? b.littleEndian : b.bigEndian) { out += $0 }
            } else {
                let b = v.bitPattern
                withUnsafeBytes(of: little ? b.littleEndian : b.bigEndian) { out += $0 }
            }
        }
        return out
    }

    func testEverySupportedKindReads() throws {
        let expected = Matrix(rows: 2, columns: 3, values: [1, 2, 3, 4, 5, 6])
        let cOrder: [Double] = [1, 2, 3, 4, 5, 6], fOrder: [Double] = [1, 4, 2, 5, 3, 6]
        for major: UInt8 in [1, 2, 3] {
            for (descr, width, little) in [("<f4", 4, true), (">f4", 4, false), ("<f8", 8, true), (">f8", 8, false)] {
                for fortran in [false, true] {
                    let file = npy(major: major, descr: descr, fortran: fortran, shape: "(2, 3)",
                                   payload: bytes(fortran ? fOrder : cOrder, width: width, little: little))
                    XCTAssertEqual(try NPY.decode(file), expected, "v\(major) \(descr) fortran=\(fortran)")
                }
            }
        }
    }

    func testRoundTripOfWhatTheTrainerWrites() throws {
        let m = Matrix(rows: 3, columns: 2, values: [0.5, -1, 2.25, 3, -0.125, 7])
        let encoded = NPY.encode(m)
        XCTAssertEqual(try NPY.decode(encoded), m)
        XCTAssertEqual((encoded.count - 6 * 4) % 64, 0, "data starts on a 64-byte boundary")
    }

    func testUnsupportedKindsAreRefused() {
        let cases: [([UInt8], String)] = [
            (npy(major: 1, descr: "<i8", fortran: false, shape: "(2, 3)", payload: [UInt8](repeating: 0, count: 48)), "dtype"),
            (npy(major: 1, descr: "<f4", fortran: false, shape: "(6,)", payload: [UInt8](repeating: 0, count: 24)), "not 2-D"),
            (npy(major: 1, descr: "<f4", fortran: false, shape: "(2, 3, 1)", payload: [UInt8](repeating: 0, count: 24)), "not 2-D"),
            (npy(major: 1, descr: "<f4", fortran: false, shape: "(2, 3)", payload: [UInt8](repeating: 0, count: 10)), "needs 24"),
            (npy(major: 4, descr: "<f4", fortran: false, shape: "(2, 3)", payload: [UInt8](repeating: 0, count: 24)), "version 4"),
            (Array("not a numpy file".utf8), "bad magic"),
        ]
        for (file, reason) in cases {
            XCTAssertThrowsError(try NPY.decode(file)) { XCTAssertTrue("\($0)".contains(reason), "\($0) lacks \(reason)") }
        }
    }
}
