/// Solves A x = b for a symmetric positive-definite k x k matrix A (row-major, doubles): the
/// factorisation A = L L^T, then two triangular solves. Used by ALS training and by fold-in.
public enum Cholesky {
    /// nil when A is not positive definite (a pivot at or below 1e-12).
    public static func solve(_ a: [Double], _ b: [Double], _ k: Int) -> [Double]? {
        solve(a, b, k, clampPivots: false)
    }

    /// For regularised systems that can lose definiteness only through rounding (ALS): a pivot at or
    /// below 1e-12 is replaced by 1e-12 instead of failing.
    public static func solveClampingPivots(_ a: [Double], _ b: [Double], _ k: Int) -> [Double] {
        // With clamped pivots the factorisation cannot fail.
        solve(a, b, k, clampPivots: true) ?? [Double](repeating: 0, count: k)
    }

    private static func solve(_ a: [Double], _ b: [Double], _ k: Int, clampPivots: Bool) -> [Double]? {
        var l = [Double](repeating: 0, count: k * k)
        for i in 0..<k {
            for j in 0...i {
                var s = a[i * k + j]
                for p in 0..<j { s -= l[i * k + p] * l[j * k + p] }
                if i == j {
                    if s <= 1e-12 {
                        guard clampPivots else { return nil }
                        s = 1e-12
                    }
                    l[i * k + i] = s.squareRoot()
                } else {
                    l[i * k + j] = s / l[j * k + j]
                }
            }
        }
        var y = [Double](repeating: 0, count: k)
        for i in 0..<k {
            var s = b[i]
            for p in 0..<i { s -= l[i * k + p] * y[p] }
            y[i] = s / l[i * k + i]
        }
        var x = [Double](repeating: 0, count: k)
        for i in stride(from: k - 1, through: 0, by: -1) {
            var s = y[i]
            for p in (i + 1)..<k { s -= l[p * k + i] * x[p] }
            x[i] = s / l[i * k + i]
        }
        return x
    }
}
