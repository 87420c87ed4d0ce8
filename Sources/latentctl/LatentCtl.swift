import Foundation
import ArgumentParser
import LatentEngine

@main
struct LatentCtl: ParsableCommand {
    /// Operator-facing failures print their message alone (no usage text) and exit 1.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let failure as Failure {
            FileHandle.standardError.write((failure.description + "\n").data(using: .utf8)!)
            Foundation.exit(1)
        } catch {
            exit(withError: error)
        }
    }

    static let configuration = CommandConfiguration(
        commandName: "latentctl",
        abstract: "LatentDB operator's tool.",
        version: BuildInfo.versionText(program: "latentctl"),
        subcommands: [Train.self, Split.self, Evaluate.self, Load.self, Info.self, Rebuild.self, Compact.self, Verify.self, Backup.self, Restore.self, Cluster.self, Bench.self])
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure LatentDB (use a release build: swift build -c release).",
        subcommands: [KernelBench.self, VAddBench.self, ANNBench.self, FilterBench.self, SeenBench.self, ServerANNBench.self, RecommendationBench.self])
}
