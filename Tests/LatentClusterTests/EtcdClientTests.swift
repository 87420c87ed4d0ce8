@testable import LatentCluster
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
