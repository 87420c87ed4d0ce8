import Foundation

/// Search scratch reused across searches (one per concurrent search).
/// Guarding: `free` is guarded by `lock`.
final class ScratchPool: @unchecked Sendable {
    private let lock = NSLock()
    private var free: [SearchScratch] = []

    func take(nodes: Int) -> SearchScratch {
        lock.lock()
        let s = free.popLast()
        lock.unlock()
        let scratch = s ?? SearchScratch(capacity: nodes)
        scratch.reset(nodes: nodes)
        return scratch
    }

    func give(_ s: SearchScratch) {
        lock.lock()
        free.append(s)
        lock.unlock()
    }
}

/// A fixed set of mutexes shared by many nodes (node % count): per-node locks without per-node memory.
/// Guarding: the mutexes are their own synchronisation; the pointer and count are immutable.
final class StripedLocks: @unchecked Sendable {
    private let locks: UnsafeMutablePointer<pthread_mutex_t>
    private let count: Int

    init(count: Int) {
        self.count = count
        locks = .allocate(capacity: count)
        for i in 0..<count { pthread_mutex_init(locks + i, nil) }
    }

    deinit {
        for i in 0..<count { pthread_mutex_destroy(locks + i) }
        locks.deallocate()
    }

    @inline(__always) func lock(_ node: UInt32) { pthread_mutex_lock(locks + Int(node) % count) }
    @inline(__always) func unlock(_ node: UInt32) { pthread_mutex_unlock(locks + Int(node) % count) }
}

/// Guarding: `value` is guarded by `lock`.
final class AtomicCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    /// Adds `n`; returns the value before.
    func add(_ n: Int) -> Int {
        lock.lock()
        defer { lock.unlock() }
        let v = value
        value += n
        return v
    }
}

/// Guarding: `value` is guarded by `lock`.
final class AtomicFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
    func set() { lock.lock(); value = true; lock.unlock() }
}
