import Foundation
import LatentVectors

/// The training parameters of the model whose item vectors a collection holds (`latentctl load` stores
/// them from model.json; VINFO shows them). Fold-in reads the regularisation and confidence from here.
public struct ModelParameters: Codable, Equatable, Sendable {
    /// `ials`, `bpr`, `als` or `sgd`.
    public var method: String
    public var regularization: Float
    /// ials: confidence 1 + alpha * w (`linear`) or 1 + alpha * log(1 + w / epsilon) (`log`).
    public var alpha: Float?
    public var confidence: String?
    public var logEpsilon: Float?
    public var factors: Int?
    /// Rating methods: the global mean the factors predict around (als; sgd without biases: 0).
    public var globalMean: Float?
    public var biased: Bool?
    /// FNV-1a 64 of the ratings file the model was trained on, in hex.
    public var dataChecksum: String?

    public init(method: String, regularization: Float, alpha: Float? = nil, confidence: String? = nil,
                logEpsilon: Float? = nil, factors: Int? = nil, globalMean: Float? = nil, biased: Bool? = nil,
                dataChecksum: String? = nil) {
        self.method = method
        self.regularization = regularization
        self.alpha = alpha
        self.confidence = confidence
        self.logEpsilon = logEpsilon
        self.factors = factors
        self.globalMean = globalMean
        self.biased = biased
        self.dataChecksum = dataChecksum
    }
}

/// Fold-in: the vector of a user the model never saw, from the items they interacted with, computed as
/// one ALS half-step against the collection's item vectors (Hu, Koren, Volinsky 2008, section 4).
///
/// ials: x = (Y^T Y + sum_i (c_i - 1) y_i y_i^T + reg I)^-1 sum_i c_i y_i, with c_i = 1 + alpha w_i (or the
/// log form) and Y every item of the collection, so Y^T Y (k x k) is computed once per collection version
/// and cached. als and unbiased sgd: ridge regression on the given items only, x = (sum_i y_i y_i^T +
/// reg n I)^-1 sum_i y_i (w_i - mean), as `latentctl train --method als` solves a user. bpr and biased sgd
/// vectors carry a bias component that a least-squares step would not keep at 1: refused.
extension Collection {
    public func foldIn(items: [ElementID], weights: [Float]?) throws -> [Float] {
        guard let model else { throw EngineError.noModelParameters(name) }
        guard !items.isEmpty else { throw EngineError.invalidFoldIn("FOLDIN needs at least one item") }
        if let weights {
            guard weights.count == items.count else {
                throw EngineError.invalidFoldIn("WEIGHTS gives \(weights.count) weights for \(items.count) items: give one per item")
            }
            if let bad = weights.first(where: { !$0.isFinite || $0 < 0 }) {
                throw EngineError.invalidFoldIn("weight \(bad) is not a finite number >= 0")
            }
        }
        let implicit: Bool
        switch model.method {
        case "ials": implicit = true
        case "als": implicit = false
        case "sgd" where model.biased != true: implicit = false
        default:
            throw EngineError.invalidFoldIn("the model in '\(name)' (\(model.method)\(model.biased == true ? " --biased" : "")) "
                + "has a bias component a least-squares fold-in cannot keep; train with --method ials (or als) to fold in")
        }
        let k = dimension
        var vectors: [[Float]] = []
        for item in items {
            guard let v = vector(of: item) else { throw EngineError.elementNotFound(item) }
            vectors.append(v)
        }
        let w = weights ?? [Float](repeating: 1, count: items.count)
        var a = [Double](repeating: 0, count: k * k)
        var b = [Double](repeating: 0, count: k)
        let reg = Double(model.regularization)
        if implicit {
            a = gramOfAllVectors()
            let alpha = Double(model.alpha ?? 1), epsilon = Double(model.logEpsilon ?? 1)
            for (y, weight) in zip(vectors, w) {
                let c = model.confidence == "log" ? 1 + alpha * log1p(Double(weight) / epsilon) : 1 + alpha * Double(weight)
                for r in 0..<k {
                    b[r] += c * Double(y[r])
                    for s in 0..<k { a[r * k + s] += (c - 1) * Double(y[r]) * Double(y[s]) }
                }
            }
            for r in 0..<k { a[r * k + r] += reg }
        } else {
            let mean = Double(model.globalMean ?? 0)
            for (y, weight) in zip(vectors, w) {
                for r in 0..<k {
                    b[r] += Double(y[r]) * (Double(weight) - mean)
                    for s in 0..<k { a[r * k + s] += Double(y[r]) * Double(y[s]) }
                }
            }
            for r in 0..<k { a[r * k + r] += reg * Double(items.count) }
        }
        guard let x = Cholesky.solve(a, b, k) else {
            throw EngineError.invalidFoldIn("the fold-in system is singular: the model's regularisation is 0 and the items do not span the space")
        }
        return x.map { Float($0) }
    }

    /// Y^T Y over every element's vector, cached until the next write.
    func gramOfAllVectors() -> [Double] {
        let version = writeVersion
        if let cached = gramCache, cached.version == version { return cached.gram }
        let k = dimension
        var g = [Double](repeating: 0, count: k * k)
        state.withReadLock {
            for slot in 0..<buffer.slotCount where buffer.isLive(slot) {
                let v = buffer.vector(slot)
                for r in 0..<k {
                    let vr = Double(v[r])
                    if vr == 0 { continue }
                    for s in r..<k { g[r * k + s] += vr * Double(v[s]) }
                }
            }
        }
        for r in 0..<k { for s in 0..<r { g[r * k + s] = g[s * k + r] } }
        gramCache = (version, g)
        return g
    }
}
