import LatentVectors

/// Everything the engine can reject, with a message that tells the user how to fix the input.
/// The protocol layer sends `message` after `-` and `code` (ERR, or MISCONF when writes are refused).
public enum EngineError: Error, Equatable, CustomStringConvertible {
    case invalidCollectionName(String)
    case invalidDimension(Int)
    case invalidElementId(String)
    case dimensionMismatch(collection: String, expected: Int, got: Int)
    case nonFiniteComponent(index: Int)
    case zeroVectorUnderCosine
    case normOutOfRange(norm: Double, tooLarge: Bool)
    case attributesTooLarge(bytes: Int)
    case unknownCollection(String)
    case collectionExists(String)
    case elementNotFound(ElementID)
    case invalidCount(Int)
    case collectionDropped(String)
    case storage(String)
    /// The store cannot take writes now (stopped after a storage error, or opened read-only); reads work.
    case writesRefused(String)
    /// FOLDIN on a collection loaded without model parameters.
    case noModelParameters(String)
    case invalidFoldIn(String)

    public static let maxDimension = 4096
    public static let maxElementIdBytes = 512
    public static let maxAttributeBytes = 64 * 1024

    public var message: String {
        switch self {
        case .invalidCollectionName(let n):
            return "invalid collection name '\(n.prefix(140))': use 1..128 letters, digits, '_', '-', '.' or ':'"
        case .invalidDimension(let d):
            return "invalid dimension \(d): must be between 1 and \(EngineError.maxDimension)"
        case .invalidElementId(let why):
            return "invalid element id: \(why)"
        case .dimensionMismatch(let c, let expected, let got):
            return "vector dimension mismatch: collection '\(c)' has dimension \(expected), got \(got)"
        case .nonFiniteComponent(let i):
            return "vector component \(i) is NaN or infinite: every component must be a finite number"
        case .zeroVectorUnderCosine:
            return "the zero vector has no direction: COSINE collections need a non-zero vector"
        case .normOutOfRange(let norm, true):
            return "vector norm \(norm) is too large: float32 distances would overflow; scale vectors to a norm of at most \(Float(Validation.maxNorm))"
        case .normOutOfRange(let norm, false):
            return "vector norm \(norm) is too small: float32 cannot normalise it under COSINE; scale it to a norm of at least \(Float(Validation.minCosineNorm))"
        case .attributesTooLarge(let n):
            return "attributes are \(n) bytes: at most \(EngineError.maxAttributeBytes) bytes are allowed"
        case .unknownCollection(let n):
            return "no such collection '\(n)'"
        case .collectionExists(let n):
            return "collection '\(n)' already exists"
        case .elementNotFound(let e):
            return "element '\(e.description.prefix(140))' not found in set"
        case .invalidCount(let k):
            return "invalid COUNT \(k): must be 1 or more"
        case .collectionDropped(let n):
            return "collection '\(n)' was dropped while the request ran"
        case .storage(let m):
            return "storage error: \(m)"
        case .writesRefused(let m):
            return m
        case .noModelParameters(let n):
            return "collection '\(n)' has no model parameters for FOLDIN: load it with latentctl load --model-dir (which stores model.json's regularisation and confidence)"
        case .invalidFoldIn(let m):
            return m
        }
    }

    /// The RESP error code the reply starts with: MISCONF (as Redis refuses writes it cannot persist)
    /// when the store cannot take writes, ERR otherwise.
    public var code: String {
        if case .writesRefused = self { return "MISCONF" }
        return "ERR"
    }

    public var description: String { message }
}
