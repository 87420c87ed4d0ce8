import Foundation
import LatentEngine
import LatentStorage
import XCTest

/// A test case with a fresh catalog in its own temporary directory per test, closed and removed after.
/// Subclasses choose the fsync policy.
class CatalogTestCase: XCTestCase {
    var directory = ""
    var catalog: CollectionCatalog!
    var fsync: FsyncPolicy { .no }

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "latentdb-\(type(of: self))-\(UUID().uuidString)"
        catalog = try CollectionCatalog(directory: directory, fsync: fsync)
    }

    override func tearDown() {
        catalog?.close()
        try? FileManager.default.removeItem(atPath: directory)
    }
}
