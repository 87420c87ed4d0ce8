import Foundation
import LatentVectors

/// Input checks shared by every write path; each throws the `EngineError` that names the problem.
enum Validation {
    static func collectionName(_ name: String) throws {
        // ASCII letters, digits and `_-.:` (checked per byte: this runs on every write).
        let ok = !name.isEmpty && name.utf8.count <= 128 && name.utf8.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
                || b == 0x5F || b == 0x2D || b == 0x2E || b == 0x3A
        }
        if !ok { throw EngineError.invalidCollectionName(name) }
    }

    static func dimension(_ d: Int) throws {
        if d < 1 || d > EngineError.maxDimension { throw EngineError.invalidDimension(d) }
    }

    static func elementId(_ id: ElementID) throws {
        let n = id.count
        if n == 0 { throw EngineError.invalidElementId("it is empty; use 1..\(EngineError.maxElementIdBytes) bytes") }
        if n > EngineError.maxElementIdBytes {
            throw EngineError.invalidElementId("it is \(n) bytes; at most \(EngineError.maxElementIdBytes) are allowed")
        }
    }

    static func vector(_ v: [Float], collection: String, dimension: Int, metric: Metric) throws {
        if v.count != dimension {
            throw EngineError.dimensionMismatch(collection: collection, expected: dimension, got: v.count)
        }
        var allZero = true
        var squaredNorm = 0.0
        for (i, x) in v.enumerated() {
            if !x.isFinite { throw EngineError.nonFiniteComponent(index: i) }
            if x != 0 { allZero = false }
            squaredNorm += Double(x) * Double(x)
        }
        if metric == .cosine && allZero { throw EngineError.zeroVectorUnderCosine }
        // Distances are computed in float32. With every norm at most maxNorm, |a.b| <= |a||b| and
        // |a-b|^2 <= (|a|+|b|)^2 stay finite, and so does every partial sum on the way (Cauchy-Schwarz
        // on prefixes), so no score is inf and no inf - inf becomes NaN. Under COSINE the squared norm
        // must also be a normal float32, or 1/norm would be infinite.
        if squaredNorm > Validation.maxNorm * Validation.maxNorm {
            throw EngineError.normOutOfRange(norm: squaredNorm.squareRoot(), tooLarge: true)
        }
        if metric == .cosine && squaredNorm < Validation.minCosineNorm * Validation.minCosineNorm {
            throw EngineError.normOutOfRange(norm: squaredNorm.squareRoot(), tooLarge: false)
        }
    }

    /// Largest vector norm: (2 * maxNorm)^2 must be a finite float32 (greatest is ~3.4e38).
    static let maxNorm = 9.0e18
    /// Smallest norm under COSINE: its square must be a normal float32 (least normal is ~1.18e-38).
    static let minCosineNorm = 1.1e-19

    /// Attributes are stored byte for byte as sent, like Redis' VSETATTR, which accepts any string: a
    /// filter treats text that is not a JSON object as "no field matches". Only the size is limited.
    static func attributes(_ bytes: [UInt8]) throws -> [UInt8] {
        if bytes.count > EngineError.maxAttributeBytes { throw EngineError.attributesTooLarge(bytes: bytes.count) }
        return bytes
    }

    /// Any positive COUNT, as Redis allows; searches clamp it to the collection's size, so a huge COUNT
    /// costs no more than returning every element.
    static func count(_ k: Int) throws {
        if k < 1 { throw EngineError.invalidCount(k) }
    }
}
