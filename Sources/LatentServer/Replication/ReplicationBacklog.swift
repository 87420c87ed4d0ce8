import NIOCore

/// The replication stream as bytes: every write command the leader ran, in order, encoded as a RESP
/// array of bulk strings. A stream position (an offset) counts bytes from the leader's start, as Redis'
/// master_repl_offset does. The backlog keeps the last `capacity` bytes so a replica that was away
/// briefly resumes (PSYNC ... CONTINUE) instead of taking a full copy.
///
/// Not thread-safe on its own: ReplicationLeader guards it with its lock.
struct ReplicationBacklog {
    /// Encoded commands, oldest first; `chunks[i]` starts at stream offset `starts[i]`.
    private var chunks: [ByteBuffer] = []
    private var starts: [Int64] = []
    private var head = 0
    private(set) var heldBytes = 0
    /// The offset the next appended byte gets.
    private(set) var endOffset: Int64
    var capacity: Int

    init(startingAt offset: Int64, capacity: Int) {
        endOffset = offset
        self.capacity = capacity
    }

    /// The oldest offset still held (== endOffset when nothing is).
    var startOffset: Int64 { head < starts.count ? starts[head] : endOffset }

    /// Whether a replica that needs `offset` next can be served from here.
    func holds(_ offset: Int64) -> Bool { offset >= startOffset && offset <= endOffset }

    mutating func append(_ bytes: ByteBuffer) {
        guard bytes.readableBytes > 0 else { return }
        chunks.append(bytes)
        starts.append(endOffset)
        endOffset += Int64(bytes.readableBytes)
        heldBytes += bytes.readableBytes
        // Keep at least the newest chunk, however large: a replica in step must still get it.
        while heldBytes > capacity && head < chunks.count - 1 {
            heldBytes -= chunks[head].readableBytes
            chunks[head] = ByteBuffer()
            head += 1
        }
        if head > 1024 && head * 2 > chunks.count {
            chunks.removeFirst(head)
            starts.removeFirst(head)
            head = 0
        }
    }

    /// Up to about `maxBytes` of the stream from `offset` (whole chunks, the first one possibly cut at
    /// `offset`); nil when `offset` is no longer (or not yet) held.
    func read(from offset: Int64, maxBytes: Int) -> [ByteBuffer]? {
        guard holds(offset) else { return nil }
        if offset == endOffset { return [] }
        // The last chunk starting at or before `offset`.
        var lo = head, hi = starts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if starts[mid] <= offset { lo = mid } else { hi = mid - 1 }
        }
        var out: [ByteBuffer] = []
        var taken = 0
        var i = lo
        while i < chunks.count && taken < maxBytes {
            var chunk = chunks[i]
            if i == lo { chunk.moveReaderIndex(forwardBy: Int(offset - starts[i])) }
            taken += chunk.readableBytes
            out.append(chunk)
            i += 1
        }
        return out
    }

    /// Drops everything and starts again at `offset` (a replica promoted, or a leader that became a replica).
    mutating func reset(at offset: Int64) {
        chunks = []
        starts = []
        head = 0
        heldBytes = 0
        endOffset = offset
    }
}

/// The stream's encoding of one command: a RESP array of bulk strings, the form a replica's RESPDecoder
/// reads and the form whose length both sides count.
enum ReplicationEncoding {
    static func encode(_ args: [ByteBuffer], into out: inout ByteBuffer) {
        out.writeString("*\(args.count)\r\n")
        for a in args {
            out.writeString("$\(a.readableBytes)\r\n")
            out.writeImmutableBuffer(a)
            out.writeString("\r\n")
        }
    }

    static func encode(_ args: [String], into out: inout ByteBuffer) {
        encode(args.map { ByteBuffer(string: $0) }, into: &out)
    }

    /// Bytes `args` take in the stream.
    static func length(of args: [ByteBuffer]) -> Int64 {
        var n = 1 + String(args.count).utf8.count + 2
        for a in args { n += 1 + String(a.readableBytes).utf8.count + 2 + a.readableBytes + 2 }
        return Int64(n)
    }
}
