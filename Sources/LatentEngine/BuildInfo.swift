import CLatentSupport
import LatentVectors

/// What `latentd --version`, `latentctl --version` and INFO report about the binary.
public enum BuildInfo {
    public static let version = "0.2.0"
    public static var gitCommit: String { String(cString: latent_build_commit()) }
    public static var buildDate: String { String(cString: latent_build_date()) }
    public static var rocksDBVersion: String { String(cString: latent_build_rocksdb_version()) }
    public static var kernelPath: String { DistanceKernels.codePath }

    /// One line per fact, as `--version` prints it.
    public static func versionText(program: String) -> String {
        """
        \(program) \(version)
        git commit: \(gitCommit)
        built: \(buildDate)
        rocksdb: \(rocksDBVersion)
        distance kernels: \(kernelPath)
        """
    }
}
