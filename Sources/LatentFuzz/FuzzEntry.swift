import CLatentSupport
import Foundation
import LatentEngine
import LatentProtocol
import LatentServer
import NIOCore

// libFuzzer target for the request path: bytes -> RESPDecoder -> CommandParser -> CommandExecutor, over a
// real catalog in a temporary directory. Built and run by `make fuzz` (tools/fuzz.sh) with
// `-sanitize=fuzzer,address`; any trap, overflow, out-of-bounds access or leak is a crash libFuzzer
// reports with the input that caused it. The first bytes choose decoder limits and whether the session
// is authenticated, so the unauthenticated limits and small bulk limits are explored too.

/// One catalog for the whole run (opening RocksDB per input would make the fuzzer ~1000x slower).
/// Inputs change it, as a hostile client would; collections are bounded by the executor's own limits.
private let fuzzCatalog: CollectionCatalog = {
    let dir = NSTemporaryDirectory() + "latentdb-fuzz-\(ProcessInfo.processInfo.processIdentifier)"
    let catalog = try! CollectionCatalog(directory: dir, fsync: .no) // the fuzzer's own setup, not reachable from input
    // libFuzzer ends with exit(): close the catalog first (stop index builds, wait for them, close RocksDB),
    // as latentd does at shutdown, or a build still flushing races RocksDB's static destructors.
    atexit { closeFuzzCatalog() }
    return catalog
}()

private func closeFuzzCatalog() {
    fuzzExecutor.verification.cancelAndWait() // a VERIFY an input started must not outlive the store
    fuzzCatalog.close()
    try? FileManager.default.removeItem(atPath: fuzzCatalog.store.directory)
}

private let fuzzExecutor: CommandExecutor = {
    var config = ServerConfiguration()
    config.password = "pw"
    config.queryCacheBytes = 1 << 20
    return CommandExecutor(catalog: fuzzCatalog, configuration: config)
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func latentFuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    let flags = data[0]
    var limits = RESPDecoderLimits()
    if flags & 1 != 0 { limits.maxBulkBytes = RESPDecoderLimits.largestBulkBytes }
    if flags & 2 != 0 { limits.maxInlineBytes = 64 }
    if flags & 4 != 0 { limits.maxBulkBytes = 1024 }
    let session = Session(id: 1, authenticated: flags & 8 != 0)
    var decoder = RESPDecoder(limits: limits, authentication: session.authentication)
    var buffer = ByteBuffer(bytes: UnsafeBufferPointer(start: data + 1, count: size - 1))
    var requests: [[ByteBuffer]] = []
    do {
        while let unit = try decoder.next(&buffer) {
            if let request = unit { requests.append(request) }
            if requests.count > 64 { break }
        }
    } catch is RESPProtocolError {
        // The server answers these and closes the connection: an expected outcome.
    } catch {
        fatalError("decoder threw an unexpected error: \(error)")
    }
    if !requests.isEmpty {
        let outcomes = fuzzExecutor.execute(batch: requests, session: session)
        var out = ByteBuffer()
        for o in outcomes { o.reply.write(into: &out, version: o.version) }
    }
    return 0
}

#if LATENT_FUZZING
/// SwiftPM links an executable's entry point as `<module>_main`; under libFuzzer it hands over to the
/// fuzzing driver, which parses libFuzzer's flags and calls `latentFuzzOneInput` per input.
@_cdecl("LatentFuzz_main")
public func latentFuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var vector = argv
    return LLVMFuzzerRunDriver(&count, &vector) { data, size in latentFuzzOneInput(data!, size) }
}
#else
/// Without libFuzzer (a plain build): replays the inputs named on the command line (files, or directories
/// of files) through the same entry point, so a corpus or a crash input can be checked with any build.
@main
struct LatentFuzzReplay {
    static func main() {
        var count = 0
        for path in CommandLine.arguments.dropFirst() {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                FileHandle.standardError.write(Data("latent-fuzz: no such file \(path)\n".utf8))
                exit(2)
            }
            let files = isDirectory.boolValue
                ? ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted().map { path + "/" + $0 }
                : [path]
            for file in files {
                guard let data = FileManager.default.contents(atPath: file) else { continue }
                let bytes = [UInt8](data)
                _ = bytes.withUnsafeBufferPointer { latentFuzzOneInput($0.baseAddress ?? UnsafePointer(bitPattern: 1)!, $0.count) }
                count += 1
            }
        }
        print("replayed \(count) inputs")
    }
}
#endif
