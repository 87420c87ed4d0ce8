// swift-tools-version:6.0
import PackageDescription

/// Code generation for one x86-64 micro-architecture level, plus LATENT_FMA so the kernels use fused
/// multiply-add (which the portable build must not: without the instruction it is a libm call per lane).
/// On other hosts the x86 kernel modules compile like the portable one and are never selected.
func x86KernelFlags(_ level: String) -> [SwiftSetting] {
    #if arch(x86_64)
    return [.unsafeFlags(["-Xcc", "-march=\(level)"]), .define("LATENT_FMA")]
    #else
    return []
    #endif
}

// Layers, bottom to top: CRocksDB -> LatentStorage; LatentVectors -> LatentIndex;
// both -> LatentEngine; LatentProtocol (codec, commands); LatentServer (NIO) -> latentd.
let package = Package(
    name: "LatentDB",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "latentd", targets: ["latentd"]),
        .executable(name: "latentctl", targets: ["latentctl"]),
        .executable(name: "latent-fuzz", targets: ["LatentFuzz"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-atomics.git", from: "1.3.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        .systemLibrary(name: "CRocksDB", path: "Sources/CRocksDB", pkgConfig: "rocksdb",
                       providers: [.apt(["librocksdb-dev", "liblz4-dev"])]),
        // zlib's crc32 for backup manifests (zlib is already RocksDB's dependency).
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // DB::Resume and the background error, which RocksDB 7.8's C API lacks: a few lines of C++.
        .target(name: "CRocksDBExtras", dependencies: ["CRocksDB"]),
        .target(name: "LatentStorage", dependencies: ["CRocksDB", "CRocksDBExtras", "CZlib"]),
        // The distance kernels, compiled three times from one source (LatentKernelsPortable/Kernels.swift,
        // symlinked into the other two): no instruction-set flags, x86-64-v3 (AVX2/FMA) and x86-64-v4
        // (AVX-512). LatentVectors picks one at run time by cpuid (KernelLevel.swift); it and everything
        // else stay flag-free, so the binary starts on any x86-64 and builds for arm64 (where the two x86
        // modules get no flags and are never chosen). No -Ounchecked (docs/benchmarks.md).
        .target(name: "LatentKernelInterface"),
        .target(name: "LatentKernelsPortable", dependencies: ["LatentKernelInterface"]),
        .target(name: "LatentKernelsAVX2", dependencies: ["LatentKernelInterface"], swiftSettings: x86KernelFlags("x86-64-v3")),
        .target(name: "LatentKernelsAVX512", dependencies: ["LatentKernelInterface"], swiftSettings: x86KernelFlags("x86-64-v4")),
        .target(name: "LatentVectors", dependencies: [
            "CLatentSupport", "LatentKernelInterface", "LatentKernelsPortable", "LatentKernelsAVX2", "LatentKernelsAVX512",
        ]),
        .target(name: "CLatentSupport"),
        .target(name: "LatentIndex", dependencies: ["LatentVectors", "CLatentSupport"]),
        // FILTER expressions (Redis' language) and the in-memory attribute columns they read: pure Swift.
        .target(name: "LatentFilter"),
        .target(name: "LatentEngine", dependencies: [
            "LatentStorage", "LatentIndex", "LatentFilter", "LatentVectors", "CLatentSupport",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Collections", package: "swift-collections"),
        ]),
        .target(name: "LatentProtocol", dependencies: [
            "LatentVectors", "LatentIndex", "LatentFilter",
            .product(name: "NIOCore", package: "swift-nio"),
        ]),
        .target(name: "LatentServer", dependencies: [
            "LatentEngine", "LatentProtocol", "CLatentSupport",
            .product(name: "Histogram", package: "hdrhistogram-swift"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "Atomics", package: "swift-atomics"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Cluster membership in etcd (its v3 JSON gateway over Foundation's URLSession): above the server,
        // used by latentd and latentctl only, so a single node does not change (docs/cluster.md).
        .target(name: "LatentCluster", dependencies: [.product(name: "Logging", package: "swift-log")]),
        .executableTarget(name: "latentd", dependencies: [
            "LatentServer", "LatentEngine", "LatentProtocol", "LatentStorage", "LatentVectors", "LatentCluster",
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // libFuzzer target over the request path (make fuzz): built only with -sanitize=fuzzer, whose
        // runtime provides main, hence -parse-as-library.
        .executableTarget(name: "LatentFuzz", dependencies: [
            "LatentServer", "LatentEngine", "LatentProtocol", "CLatentSupport",
            .product(name: "NIOCore", package: "swift-nio"),
        ], swiftSettings: [.unsafeFlags(["-parse-as-library"])]),
        // Matrix factorisation and the file formats around it: its own module, no server dependencies.
        .target(name: "LatentMF", dependencies: ["LatentVectors", "CLatentSupport"]),
        .executableTarget(name: "latentctl", dependencies: [
            "LatentVectors", "LatentIndex", "LatentEngine", "LatentStorage", "LatentMF", "LatentFilter", "LatentCluster",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .testTarget(name: "LatentStorageTests", dependencies: ["LatentStorage"]),
        .testTarget(name: "LatentMFTests", dependencies: ["LatentMF"]),
        .testTarget(name: "LatentVectorsTests", dependencies: ["LatentVectors", "LatentIndex"]),
        .testTarget(name: "LatentFilterTests", dependencies: ["LatentFilter"]),
        .testTarget(name: "LatentClusterTests", dependencies: ["LatentCluster", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "LatentEngineTests", dependencies: ["LatentEngine", "LatentStorage", "LatentFilter"]),
        .testTarget(name: "LatentProtocolTests", dependencies: [
            "LatentProtocol", "LatentServer", "LatentEngine", "LatentFilter",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
        ]),
    ],
    swiftLanguageModes: [.v5]
)
