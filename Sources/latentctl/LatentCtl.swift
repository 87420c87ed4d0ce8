import ArgumentParser

@main
struct LatentCtl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "latentctl",
        abstract: "LatentDB operator's tool.",
        subcommands: [Bench.self])
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure LatentDB (use a release build: swift build -c release).",
        subcommands: [KernelBench.self, VAddBench.self, ANNBench.self, ServerANNBench.self])
}
