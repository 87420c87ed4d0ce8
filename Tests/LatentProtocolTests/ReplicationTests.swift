import Foundation
import LatentEngine
import LatentProtocol
@testable import LatentServer
@testable import LatentStorage
import NIOCore
import NIOEmbedded
import XCTest

/// The pieces of replication that need no second process: the backlog, acknowledgements and WAIT, what
/// a write puts in the stream, a replica's refusals, the stored position and a copy's installation.
/// tests/integration/test_replication.py runs leaders and replicas as processes.
final class ReplicationTests: CatalogTestCase {

    private func run(_ e: CommandExecutor, _ s: Session, _ line: String) -> RESPValue {
        e.execute(batch: [line.split(separator: " ").map { ByteBuffer(string: String($0)) }], session: s)[0].reply.asSeenByRESP2
    }

    private func streamText(_ e: CommandExecutor, from offset: Int64 = 0) -> String {
        let pieces = e.replication.leader.read(from: offset, maxBytes: .max) ?? []
        return pieces.map { String(buffer: $0) }.joined()
    }

    private func encoded(_ words: [String]) -> String {
        var b = ByteBuffer()
        ReplicationEncoding.encode(words, into: &b)
        return String(buffer: b)
    }

    // MARK: Backlog

    func testBacklogReadsFromAnyHeldOffsetAndForgetsTheOldest() {
        var log = ReplicationBacklog(startingAt: 100, capacity: 10)
        log.append(ByteBuffer(string: "abcd"))
        log.append(ByteBuffer(string: "efgh"))
        XCTAssertEqual(log.startOffset, 100)
        XCTAssertEqual(log.endOffset, 108)
        XCTAssertEqual(log.read(from: 102, maxBytes: .max)?.map { String(buffer: $0) }.joined(), "cdefgh")
        XCTAssertEqual(log.read(from: 108, maxBytes: .max)?.count, 0)
        XCTAssertNil(log.read(from: 109, maxBytes: .max), "beyond the end")
        XCTAssertNil(log.read(from: 99, maxBytes: .max), "before the start")
        log.append(ByteBuffer(string: "ijkl")) // 12 bytes > 10: the oldest chunk goes
        XCTAssertEqual(log.startOffset, 104)
        XCTAssertFalse(log.holds(103))
        XCTAssertEqual(log.read(from: 104, maxBytes: 4)?.map { String(buffer: $0) }.joined(), "efgh", "at most about maxBytes")
        // A chunk larger than the capacity is still kept whole (a replica in step needs it).
        log.append(ByteBuffer(string: String(repeating: "z", count: 50)))
        XCTAssertEqual(log.startOffset, 112)
        XCTAssertEqual(log.endOffset, 162)
        log.reset(at: 500)
        XCTAssertEqual(log.startOffset, 500)
        XCTAssertEqual(log.read(from: 500, maxBytes: 10)?.count, 0)
        // Many chunks: the trimmed front is compacted without changing what is read.
        var big = ReplicationBacklog(startingAt: 0, capacity: 100)
        for i in 0..<5000 { big.append(ByteBuffer(string: String(format: "%04d", i))) }
        XCTAssertEqual(big.read(from: 4996 * 4, maxBytes: 8)?.map { String(buffer: $0) }.joined(), "49964997")
    }

    func testEncodingLengthIsTheEncodedLength() {
        for words in [["PING"], ["VADD", "k", "VALUES", "2", "1", "0", "element with spaces"], ["X", ""], Array(repeating: "a", count: 12)] {
            let args = words.map { ByteBuffer(string: $0) }
            var b = ByteBuffer()
            ReplicationEncoding.encode(args, into: &b)
            XCTAssertEqual(Int64(b.readableBytes), ReplicationEncoding.length(of: args))
            var decoder = RESPDecoder()
            XCTAssertEqual(try decoder.next(&b)??.map { String(buffer: $0) }, words)
        }
    }

    // MARK: Acknowledgements and WAIT

    func testWaitCountsReplicasThatAcknowledgedAnOffset() throws {
        let leader = ReplicationLeader(backlogBytes: 1 << 20)
        let offset = leader.append([["VADD", "k"].map { ByteBuffer(string: $0) }])
        XCTAssertGreaterThan(offset, 0)
        for id in [1, 2] {
            leader.register(.init(connection: id, address: "127.0.0.1:1", listeningPort: 7000 + id, state: "online", ackOffset: -1,
                                  lastAck: DispatchTime.now().uptimeNanoseconds), wake: {})
        }
        XCTAssertEqual(leader.acknowledged(offset), 0)
        // Blocking form: times out with the count then.
        let started = Date()
        XCTAssertEqual(leader.waitForAcks(replicas: 1, offset: offset, timeout: 0.2), 0)
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(started), 0.19)
        // Non-blocking form: completes when enough acknowledged.
        let loop = EmbeddedEventLoop()
        let waiting = leader.waitForAcks(replicas: 2, offset: offset, timeoutMillis: 0, on: loop)
        var answered: Int?
        waiting.whenSuccess { answered = $0 }
        leader.acknowledge(connection: 1, offset: offset)
        loop.run()
        XCTAssertNil(answered, "one of two")
        leader.acknowledge(connection: 2, offset: offset - 1)
        loop.run()
        XCTAssertNil(answered, "an acknowledgement short of the offset does not count")
        leader.acknowledge(connection: 2, offset: offset)
        loop.run()
        XCTAssertEqual(answered, 2)
        // With a timeout: answers the count at the deadline.
        var timedOut: Int?
        leader.waitForAcks(replicas: 3, offset: offset, timeoutMillis: 50, on: loop).whenSuccess { timedOut = $0 }
        loop.advanceTime(by: .milliseconds(49))
        XCTAssertNil(timedOut)
        loop.advanceTime(by: .milliseconds(2))
        XCTAssertEqual(timedOut, 2)
        // Shutdown answers whoever still waits.
        var released: Int?
        leader.waitForAcks(replicas: 5, offset: offset, timeoutMillis: 0, on: loop).whenSuccess { released = $0 }
        leader.releaseWaiters()
        loop.run()
        XCTAssertEqual(released, 2)
        XCTAssertEqual(leader.goodReplicas(maxLagSeconds: 10), 2)
        leader.unregister(connection: 1)
        XCTAssertEqual(leader.acknowledged(offset), 1)
        XCTAssertTrue(leader.canContinue(replicationId: leader.replicationId, offset: offset))
        XCTAssertFalse(leader.canContinue(replicationId: "other", offset: offset))
        let old = leader.replicationId
        leader.restart(at: 1000)
        XCTAssertNotEqual(leader.replicationId, old)
        XCTAssertEqual(leader.offset, 1000)
        try loop.syncShutdownGracefully()
    }

    // MARK: The stream a leader writes

    func testWritesReachTheStreamAsRunAndReadsErrorsAndQueuedRequestsDoNot() throws {
        let e = CommandExecutor(catalog: catalog, configuration: ServerConfiguration()), s = Session(id: 1, authenticated: true)
        XCTAssertEqual(run(e, s, "VADD k VALUES 2 1 0 a"), .integer(1))
        XCTAssertEqual(s.lastWriteOffset, e.replication.leader.offset)
        _ = run(e, s, "VSIM k VALUES 2 1 0")
        _ = run(e, s, "VCARD k")
        XCTAssertEqual(run(e, s, "VADD k VALUES 3 1 0 0 b").isError, true)
        var expected = encoded(["VADD", "k", "VALUES", "2", "1", "0", "a"])
        XCTAssertEqual(streamText(e), expected, "reads and failed writes are not streamed")
        // A pipelined group of VADDs: each one that succeeded, in order.
        let group = [["VADD", "k", "VALUES", "2", "0", "1", "b"], ["VADD", "k", "VALUES", "1", "1", "bad"], ["VADD", "k", "VALUES", "2", "1", "1", "c"]]
        let replies = e.execute(batch: group.map { $0.map { ByteBuffer(string: $0) } }, session: s).map(\.reply)
        XCTAssertEqual(replies.map(\.isError), [false, true, false])
        expected += encoded(group[0]) + encoded(group[2])
        XCTAssertEqual(streamText(e), expected)
        // MULTI/EXEC: the whole transaction, once, when EXEC runs.
        _ = run(e, s, "MULTI")
        _ = run(e, s, "VREM k a")
        _ = run(e, s, "VCARD k")
        XCTAssertEqual(streamText(e), expected, "nothing while queued")
        _ = run(e, s, "EXEC")
        expected += encoded(["MULTI"]) + encoded(["VREM", "k", "a"]) + encoded(["VCARD", "k"]) + encoded(["EXEC"])
        XCTAssertEqual(streamText(e), expected)
        // A relative expiry becomes the absolute time; a past one a DEL; one that did nothing, nothing.
        XCTAssertEqual(run(e, s, "EXPIRE k 100"), .integer(1))
        let at = try XCTUnwrap(catalog.collection("k")?.expiresAt)
        expected += encoded(["PEXPIREAT", "k", String(at)])
        XCTAssertEqual(streamText(e), expected)
        XCTAssertEqual(run(e, s, "EXPIRE k 10 NX"), .integer(0))
        XCTAssertEqual(streamText(e), expected)
        XCTAssertEqual(run(e, s, "EXPIRE k -1"), .integer(1))
        expected += encoded(["DEL", "k"])
        XCTAssertEqual(streamText(e), expected)
        // A collection the catalog drops because its time ran out: a DEL, once, after its PEXPIREAT (the
        // background reaper may drop it before this test's own reapExpired call: either way one DEL).
        _ = run(e, s, "VCREATE t DIM 2")
        let before = e.replication.leader.offset
        // 300 ms, not 1: a PEXPIRE whose time has already passed when it is streamed is rewritten as a DEL,
        // and under ThreadSanitizer 1 ms passed before that (a CI failure this session).
        _ = run(e, s, "PEXPIRE t 300")
        Thread.sleep(forTimeInterval: 0.4)
        catalog.reapExpired()
        let tail = streamText(e, from: before)
        XCTAssertTrue(tail.hasPrefix("*3\r\n$9\r\nPEXPIREAT\r\n$1\r\nt\r\n"), tail)
        XCTAssertTrue(tail.hasSuffix(encoded(["DEL", "t"])), tail)
        XCTAssertEqual(tail.components(separatedBy: "DEL").count, 2, "one DEL")
        XCTAssertEqual(run(e, s, "EXISTS t"), .integer(0))
    }

    func testAReplicaRefusesClientWritesAndKeepsExpiredCollectionsUntilItsLeaderDeletesThem() throws {
        let e = CommandExecutor(catalog: catalog, configuration: ServerConfiguration()), s = Session(id: 1, authenticated: true)
        _ = run(e, s, "VADD k VALUES 2 1 0 a")
        // Due well after the executor becomes a replica: with a 1 ms expiry the catalog's background
        // reaper could drop it first on a slow run (seen under ThreadSanitizer).
        _ = run(e, s, "PEXPIRE k 300")
        let link = ReplicaLink(host: "127.0.0.1", port: 1, executor: e, listeningPort: 0, position: nil, logger: e.replication.logger)
        e.replication.state.withLockedValue { $0 = link } // a replica, its link not started
        e.observeExpiry(of: catalog)
        Thread.sleep(forTimeInterval: 0.4)
        XCTAssertEqual(catalog.reapExpired(), 0)
        XCTAssertEqual(run(e, s, "EXISTS k"), .integer(1), "a replica does not expire keys itself")
        XCTAssertEqual(run(e, s, "VADD k VALUES 2 0 1 b"), .error("READONLY You can't write against a read only replica."))
        XCTAssertEqual(run(e, s, "MULTI"), .ok)
        XCTAssertEqual(run(e, s, "DEL k"), .error("READONLY You can't write against a read only replica."))
        XCTAssertEqual(run(e, s, "EXEC"), .error("EXECABORT Transaction discarded because of previous errors."))
        XCTAssertEqual(run(e, s, "VCARD k"), .integer(1))
        XCTAssertEqual(run(e, s, "WAIT 1 0"), .integer(0))
        // The link's own writes apply, with the stream position in the same batch.
        let streamed = e.replication.leader.offset
        let position = ReplicationPosition(replicationId: "abc", offset: 42)
        try e.applyReplicated([["MULTI"], ["DEL", "k"], ["VADD", "n", "VALUES", "2", "1", "1", "x"], ["EXEC"]].map { $0.map { ByteBuffer(string: $0) } },
                              position: position)
        XCTAssertEqual(run(e, s, "EXISTS k"), .integer(0))
        XCTAssertEqual(run(e, s, "VCARD n"), .integer(1))
        XCTAssertEqual(try catalog.store.replicationPosition(), position)
        XCTAssertEqual(e.replication.leader.offset, streamed, "a replica streams nothing of its own")
        XCTAssertEqual(e.replicationInfo().first { $0.0 == "role" }?.1, "slave")
    }

    func testMinReplicasToWriteRefusesWritesBeforeTheyRun() {
        var config = ServerConfiguration()
        config.minReplicasToWrite = 1
        config.minReplicasMaxLagSeconds = 1
        let e = CommandExecutor(catalog: catalog, configuration: config), s = Session(id: 1, authenticated: true)
        XCTAssertEqual(run(e, s, "VADD k VALUES 2 1 0 a"), .error("NOREPLICAS Not enough good replicas to write."))
        XCTAssertEqual(run(e, s, "EXISTS k"), .integer(0))
        XCTAssertEqual(e.replication.leader.offset, 0)
        XCTAssertEqual(run(e, s, "VCARD k"), .integer(0), "reads are served")
        // A replica that acknowledges nothing: the write runs, and its reply says it is not replicated.
        e.replication.leader.register(.init(connection: 9, address: "127.0.0.1:1", listeningPort: 1, state: "online", ackOffset: 0,
                                            lastAck: DispatchTime.now().uptimeNanoseconds), wake: {})
        guard case .error(let message) = run(e, s, "VADD k VALUES 2 1 0 a") else { return XCTFail("expected NOREPLICAS") }
        XCTAssertTrue(message.hasPrefix("NOREPLICAS the write was applied"), message)
        XCTAssertEqual(run(e, s, "EXISTS k"), .integer(1))
    }

    // MARK: Commands

    func testReplicationCommandsParseAndRejectBadArguments() {
        func parse(_ line: String) -> Result<Command, Error> {
            Result { try CommandParser.parse(line.split(separator: " ").map { ByteBuffer(string: String($0)) }) }
        }
        XCTAssertEqual(try parse("REPLICAOF no one").get(), .replicaOf(host: nil, port: 0))
        XCTAssertEqual(try parse("SLAVEOF 10.0.0.1 7379").get(), .replicaOf(host: "10.0.0.1", port: 7379))
        XCTAssertEqual(try parse("WAIT 2 100").get(), .wait(replicas: 2, timeoutMillis: 100))
        XCTAssertEqual(try parse("PSYNC ? -1").get(), .psync(replicationId: "?", offset: -1))
        XCTAssertEqual(try parse("ROLE").get(), .role)
        for bad in ["REPLICAOF host", "REPLICAOF host 0", "REPLICAOF host 70000", "REPLICAOF host port", "WAIT 1", "WAIT -1 0",
                    "WAIT 1 -5", "WAIT a b", "PSYNC id", "PSYNC id -2", "PSYNC id x", "ROLE x", "REPLCONF ack"] {
            XCTAssertThrowsError(try parse(bad).get(), bad)
        }
        let e = CommandExecutor(catalog: catalog, configuration: ServerConfiguration()), s = Session(id: 1, authenticated: true)
        XCTAssertEqual(run(e, s, "REPLCONF listening-port 7001"), .ok)
        XCTAssertEqual(s.replicaListeningPort, 7001)
        XCTAssertTrue(run(e, s, "REPLICAOF 127.0.0.1 1").isError, "without a way to reopen the store")
        XCTAssertTrue(run(e, s, "PSYNC ? -1").isError, "PSYNC is a connection's own request")
        guard case .array(let role) = run(e, s, "ROLE") else { return XCTFail("ROLE") }
        XCTAssertEqual(role.first, .bulk("master"))
    }

    func testConfigurationOfReplication() throws {
        var c = ServerConfiguration()
        let replicaof = try XCTUnwrap(ConfigSchema.directive("replicaof"))
        try replicaof.set(&c, "10.1.2.3 7000")
        XCTAssertEqual(c.replicaOf?.host, "10.1.2.3")
        XCTAssertEqual(replicaof.get(c), "10.1.2.3 7000")
        try replicaof.set(&c, "no one")
        XCTAssertNil(c.replicaOf)
        for bad in ["host", "host 0", "host x", "a b c"] { XCTAssertThrowsError(try replicaof.set(&c, bad), bad) }
        XCTAssertThrowsError(try ConfigSchema.directive("repl-backlog-size")!.set(&c, "1"))
        try ConfigSchema.directive("repl-backlog-size")!.set(&c, "256mb")
        XCTAssertEqual(c.replBacklogBytes, 256 << 20)
        XCTAssertThrowsError(try ConfigSchema.directive("min-replicas-to-write")!.set(&c, "-1"))
        XCTAssertThrowsError(try ConfigSchema.directive("min-replicas-max-lag")!.set(&c, "0"))
    }

    // MARK: Storage

    func testStoredPositionAndInstallingACopy() throws {
        XCTAssertNil(try catalog.store.replicationPosition())
        let position = ReplicationPosition(replicationId: "id1", offset: 7)
        try catalog.store.setReplicationPosition(position)
        XCTAssertEqual(try catalog.store.replicationPosition(), position)
        XCTAssertNil(ReplicationPosition.parse(Array("id1 -3".utf8)))
        XCTAssertNil(ReplicationPosition.parse(Array("just-one-word".utf8)))
        try catalog.store.setReplicationPosition(nil)
        XCTAssertNil(try catalog.store.replicationPosition())

        // A copy: a checkpoint of a store with one collection, sealed with its manifest.
        _ = try catalog.create(name: "copied", dimension: 2, metric: .cosine)
        let copy = directory + "-copy"
        defer { try? FileManager.default.removeItem(atPath: copy) }
        try catalog.checkpoint(to: copy)
        try StoreBackup.seal(copy)
        let target = directory + "-target"
        defer { try? FileManager.default.removeItem(atPath: target) }
        let own = try CollectionCatalog(directory: target, fsync: .no)
        _ = try own.create(name: "own", dimension: 3, metric: .l2)
        own.close()
        // A damaged copy is refused and the target is untouched.
        let damaged = directory + "-damaged"
        defer { try? FileManager.default.removeItem(atPath: damaged) }
        try FileManager.default.copyItem(atPath: copy, toPath: damaged)
        try "x".write(toFile: damaged + "/CURRENT", atomically: false, encoding: .utf8)
        XCTAssertThrowsError(try InstalledBackup.install(damaged, into: target))
        // Installed, then rolled back: the target's own store again.
        let staging1 = target + "/.latentdb-sync-incoming"
        try FileManager.default.copyItem(atPath: copy, toPath: staging1)
        try InstalledBackup.install(staging1, into: target).rollback()
        var reopened = try CollectionCatalog(directory: target, fsync: .no)
        XCTAssertEqual(reopened.names, ["own"])
        reopened.close()
        // Installed and committed: the copy's store, nothing left aside.
        try FileManager.default.copyItem(atPath: copy, toPath: staging1)
        let installed = try InstalledBackup.install(staging1, into: target)
        reopened = try CollectionCatalog(directory: target, fsync: .no)
        installed.commit()
        XCTAssertEqual(reopened.names, ["copied"])
        reopened.close()
        XCTAssertFalse(FileManager.default.fileExists(atPath: target + "/" + InstalledBackup.replacedName))
        XCTAssertFalse(FileManager.default.fileExists(atPath: staging1))

        // Interrupted after the store's files were set aside and before the copy was moved in: opening puts
        // them back. Scratch left by a stopped server (a backup checkpoint, an incoming copy) is removed.
        let fm = FileManager.default
        let replaced = target + "/" + InstalledBackup.replacedName
        try fm.createDirectory(atPath: replaced, withIntermediateDirectories: false)
        for name in try fm.contentsOfDirectory(atPath: target) where !name.hasPrefix(".latentdb") {
            try fm.moveItem(atPath: target + "/" + name, toPath: replaced + "/" + name)
        }
        try fm.createDirectory(atPath: target + "/.latentdb-backup-3", withIntermediateDirectories: false)
        try fm.createDirectory(atPath: target + "/.latentdb-sync-incoming", withIntermediateDirectories: false)
        reopened = try CollectionCatalog(directory: target, fsync: .no)
        XCTAssertEqual(reopened.names, ["copied"])
        XCTAssertNotNil(reopened.store.interruptedInstallReport)
        reopened.close()
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: target).filter { $0.hasPrefix(".latentdb") }, [])
    }
}
