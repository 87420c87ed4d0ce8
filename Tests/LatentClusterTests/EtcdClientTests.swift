@testable import LatentCluster
import Logging
import XCTest

/// The etcd client's pure parts; tests/integration/test_cluster.py runs it against a real etcd.
final class EtcdClientTests: XCTestCase {
    func testPrefixEndIsTheFirstKeyAfterThePrefix() {
        XCTAssertEqual(EtcdClient.prefixEnd(Array("/latentdb/a/".utf8)), Array("/latentdb/a0".utf8))
        XCTAssertEqual(EtcdClient.prefixEnd([0x61, 0xff]), [0x62])
        XCTAssertEqual(EtcdClient.prefixEnd([0xff, 0xff]), [0])
        XCTAssertEqual(EtcdClient.prefixEnd([]), [0])
    }

    func testEndpointsAreCheckedAndInt64FieldsRead() throws {
        XCTAssertEqual(try EtcdClient(endpoints: "http://127.0.0.1:2379, http://10.0.0.2:2379").endpoints.count, 2)
        for bad in ["", ",", "127.0.0.1:2379", "ftp://x:1", "http://"] {
            XCTAssertThrowsError(try EtcdClient(endpoints: bad), bad)
        }
        XCTAssertEqual(EtcdClient.int64("4111120382409054725"), 4111120382409054725)
        XCTAssertEqual(EtcdClient.int64(NSNumber(value: 7)), 7)
        XCTAssertNil(EtcdClient.int64("x"))
        XCTAssertNil(EtcdClient.int64(nil))
        XCTAssertEqual(ClusterKeys.node("c1", "n1"), "/latentdb/c1/nodes/n1")
    }

    func testAnUnreachableEtcdIsReportedWithEveryEndpointTried() throws {
        // Port 1 on loopback: nothing listens there.
        let client = try EtcdClient(endpoints: "http://127.0.0.1:1,http://127.0.0.1:2", timeout: 1)
        XCTAssertThrowsError(try client.get("k")) { error in
            guard let e = error as? EtcdError else { return XCTFail("\(error)") }
            XCTAssertEqual(e.kind, .unreachable)
            XCTAssertTrue(e.description.contains("127.0.0.1:1") && e.description.contains("127.0.0.1:2"), e.description)
        }
    }
}

/// A replication stand-in for the failover controller's fencing check.
final class FakeReplication: ReplicationControl, @unchecked Sendable {
    var isLeader = true
    var following: String?
    var streamOffset: Int64 = 0
    func lead() throws { isLeader = true }
    func follow(host: String, port: Int) throws {
        isLeader = false
        following = "\(host):\(port)"
    }
}

final class ClusterFailoverTests: XCTestCase {
    func testANodeNotYetConfirmedAsLeaderIsFencedAndAReplicaIsNot() throws {
        let etcd = try EtcdClient(endpoints: "http://127.0.0.1:1", timeout: 1)
        let membership = ClusterMembership(etcd: etcd, cluster: "c", node: ClusterNode(id: "n", advertise: "127.0.0.1:1", startedAt: 0,
                                                                                         version: "t"), ttl: 3, logger: .init(label: "t"))
        let control = FakeReplication()
        let failover = ClusterFailover(membership: membership, control: control, logger: .init(label: "t"))
        let refusal = try XCTUnwrap(failover.writeRefusal(), "a leader never confirmed takes no writes")
        XCTAssertTrue(refusal.hasPrefix("CLUSTERDOWN"), refusal)
        try control.follow(host: "h", port: 1)
        XCTAssertNil(failover.writeRefusal(), "a replica's writes are refused by READONLY, not by fencing")
        // etcd unreachable: a step changes nothing and does not throw.
        failover.step()
        XCTAssertEqual(control.following, "h:1")
        XCTAssertEqual(failover.leaderKey, "/latentdb/c/leader")
    }
}
