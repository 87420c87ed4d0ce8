import NIOPosix

/// The threads requests run on, off the event loops: one pool for batches that write, one for the
/// rest. A write can wait (the WAL's fsync, or helping a lagging index catch up: the engine's
/// back-pressure), and with one shared pool a burst of waiting writers would take every thread and
/// hold up searches that need none of what the writers wait for. Each connection still runs one batch
/// at a time, in order, whichever pool it lands on.
public final class WorkerPools: Sendable {
    let reads: NIOThreadPool
    let writes: NIOThreadPool

    init(threadsEach: Int) {
        reads = NIOThreadPool(numberOfThreads: threadsEach)
        writes = NIOThreadPool(numberOfThreads: threadsEach)
        reads.start()
        writes.start()
    }

    func shutdown() {
        try? reads.syncShutdownGracefully()
        try? writes.syncShutdownGracefully()
    }
}
