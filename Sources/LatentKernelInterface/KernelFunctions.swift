/// What each kernel module (LatentKernelsPortable / AVX2 / AVX512) provides: the same functions,
/// compiled for its level. LatentVectors' `KernelTable` is built from any of them through this protocol
/// (specialised per module, so no witness-table call is left in an optimised build). See
/// LatentKernelsPortable/Kernels.swift for what each computes.
public protocol KernelFunctions {
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float
    static func l2Squared(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float
    static func l2Distances(query: UnsafePointer<Float>, base: UnsafePointer<Float>, count: Int, dimension n: Int,
                            out: UnsafeMutablePointer<Float>)
    static func negatedDots(query: UnsafePointer<Float>, base: UnsafePointer<Float>, count: Int, dimension n: Int,
                            out: UnsafeMutablePointer<Float>)
    static func cosineDistances(query: UnsafePointer<Float>, base: UnsafePointer<Float>, count: Int, dimension n: Int,
                                invNorms: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>)
    static func inverseNorm(_ a: UnsafePointer<Float>, _ n: Int) -> Float
    static func sgdRating(_ p: UnsafeMutablePointer<Float>, _ q: UnsafeMutablePointer<Float>, _ n: Int,
                          target: Float, offset: Float, learningRate lr: Float, regularization reg: Float) -> Float
    static func sgdStep(_ p: UnsafeMutablePointer<Float>, _ q: UnsafeMutablePointer<Float>, _ n: Int,
                        error e: Float, learningRate lr: Float, regularization reg: Float)
    static func axpy(_ a: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int)
    static func bprUpdate(_ p: UnsafeMutablePointer<Float>, _ qi: UnsafeMutablePointer<Float>,
                          _ qj: UnsafeMutablePointer<Float>, _ n: Int, z: Float, learningRate lr: Float,
                          regularization reg: Float)
}
