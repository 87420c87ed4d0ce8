import LatentServer
import NIOCore
import XCTest

/// Which requests the event loop answers itself and which go to the write pool, judged from raw names.
final class RequestRoutingTests: XCTestCase {
    private func args(_ words: String...) -> [ByteBuffer] { words.map { ByteBuffer(string: $0) } }

    func testOnlyPingAndEchoAreAnsweredOnTheEventLoop() {
        XCTAssertTrue(CommandExecutor.answersOnEventLoop(args("PING")))
        XCTAssertTrue(CommandExecutor.answersOnEventLoop(args("ping", "hello")))
        XCTAssertTrue(CommandExecutor.answersOnEventLoop(args("Echo", "x")))
        XCTAssertFalse(CommandExecutor.answersOnEventLoop(args("PING", "a", "b")))
        XCTAssertFalse(CommandExecutor.answersOnEventLoop(args("PINGX")))
        XCTAssertFalse(CommandExecutor.answersOnEventLoop(args("VSIM", "c")))
        XCTAssertFalse(CommandExecutor.answersOnEventLoop([]))
        // 0xDF masking must not turn other bytes into PING: "p\u{09}ng" differs in more than case.
        XCTAssertFalse(CommandExecutor.answersOnEventLoop([ByteBuffer(bytes: [0x70, 0x09, 0x6E, 0x67])]))
    }

    func testWritesAreRoutedByName() {
        for name in ["VADD", "vadd", "VRem", "VSETATTR", "VCREATE", "VDROP", "VREBUILD", "VRENAME", "VSETSEEN"] {
            XCTAssertTrue(CommandExecutor.writesByName(args(name, "c")), name)
        }
        for name in ["VSIM", "VEMB", "PING", "INFO", "VINFO", "VCARD", "VGETATTR", "X", "VADDXXXXXXXXX"] {
            XCTAssertFalse(CommandExecutor.writesByName(args(name, "c")), name)
        }
        XCTAssertFalse(CommandExecutor.writesByName([]))
    }
}
