import Foundation
import LatentEngine
import LatentProtocol
@testable import LatentServer
import NIOCore
import XCTest

/// VERIFY through the executor, and the shutdown path: cancelAndWait returns with no verification running.
final class BackgroundVerificationTests: XCTestCase {
    func testVerifyRunsInTheBackgroundAndShutdownWaitsForIt() throws {
        let directory = NSTemporaryDirectory() + "latentdb-bgverify-\(UUID().uuidString)"
        let catalog = try CollectionCatalog(directory: directory, fsync: .no)
        defer {
            catalog.close()
            try? FileManager.default.removeItem(atPath: directory)
        }
        let e = CommandExecutor(catalog: catalog, configuration: ServerConfiguration()), s = Session(id: 1, authenticated: true)
        func run(_ line: String) -> RESPValue {
            e.execute(batch: [line.split(separator: " ").map { ByteBuffer(string: String($0)) }], session: s)[0].reply.asSeenByRESP2
        }
        for i in 0..<200 { XCTAssertEqual(run("VADD k VALUES 3 1 \(i) 2 e\(i)"), .integer(1)) }
        XCTAssertEqual(run("VERIFY"), .simpleString("Background verification started"))
        // Waiting for it (what latentd does before closing the store) leaves nothing running.
        e.verification.cancelAndWait()
        let state = e.verification.current
        XCTAssertFalse(state.running)
        XCTAssertTrue(["ok", "cancelled"].contains(state.lastStatus), state.lastStatus)
        if state.lastStatus == "cancelled" { XCTAssertEqual(state.lastProblems, []) }
        if state.lastStatus == "ok" { XCTAssertEqual(state.lastElements, 200) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory + "/.latentdb-verify"))
    }
}
