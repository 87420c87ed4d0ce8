"""Memory and work bounded per client (issue 7): idle timeouts, unread replies, abandoned pipelines."""
import signal
import socket
import time

from conftest import Server, read_until_closed
from resp_client import Client, encode, fp32


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def test_idle_timeout_closes_a_connection_that_declares_a_bulk_and_sends_nothing(data_dir):
    s = Server(data_dir, "--timeout", "1").start()
    try:
        stalled = s.connect()
        stalled.sendall(b"*2\r\n$4\r\nECHO\r\n$5\r\n")
        started = time.time()
        assert read_until_closed(stalled, timeout=10) == b""
        assert 0.5 < time.time() - started < 5
        # A client that keeps talking is not closed.
        busy = Client(s.port)
        for _ in range(4):
            assert busy.call("PING") == "PONG"
            time.sleep(0.4)
    finally:
        s.kill()


def test_unread_pipelined_replies_do_not_grow_memory(data_dir):
    s = Server(data_dir).start()
    try:
        c = Client(s.port)
        for i in range(200):
            c.call("VADD", "k", "FP32", fp32([float(i), 1.0, 0.5, float(i % 7)]), f"e{i}")
        base = rss_mib(s.proc.pid)
        sock = s.connect()
        sock.setblocking(False)
        request = encode("VSIM", "k", "VALUES", "4", "1", "1", "1", "1", "COUNT", "100", "WITHSCORES") * 1000
        sent, stalled_since, peak = 0, None, base
        deadline = time.time() + 60
        # Send up to 1,000,000 requests without reading a reply; the server must stop reading rather than
        # buffer replies (each ~2.5 KB: 2.5 GB if it did not).
        while sent < 1000 and time.time() < deadline:
            try:
                sock.send(request)
                sent += 1
                stalled_since = None
            except BlockingIOError:
                stalled_since = stalled_since or time.time()
                if time.time() - stalled_since > 3:
                    break
                time.sleep(0.05)
            peak = max(peak, rss_mib(s.proc.pid))
        assert sent < 1000, "the server never stopped reading"
        assert peak - base < 200, f"RSS grew by {peak - base:.0f} MiB with replies unread"
        sock.close()
        time.sleep(1)
        assert Client(s.port).call("PING") == "PONG"
    finally:
        s.kill()


def test_abandoned_heavy_pipeline_is_cancelled(data_dir):
    s = Server(data_dir).start()
    try:
        c = Client(s.port)
        batch = [("VADD", "big", "FP32", fp32([float((i * 7919) % 1000), float(i % 13), 1.0, float(i % 101)]), f"e{i}")
                 for i in range(20000)]
        for j in range(0, len(batch), 2000):
            c.pipeline(batch[j:j + 2000])
        sock = s.connect()
        sock.sendall(encode("VSIM", "big", "VALUES", "4", "1", "2", "3", "4", "COUNT", "10000") * 3000)
        time.sleep(0.5)
        sock.close()
        time.sleep(0.5)
        started = time.time()
        assert Client(s.port).call("PING") == "PONG"
        assert time.time() - started < 2
        started = time.time()
        s.proc.send_signal(signal.SIGTERM)
        assert s.proc.wait(timeout=60) == 0
        assert time.time() - started < 8, "queued work of a closed connection was still running"
    finally:
        s.kill()


def test_ten_thousand_empty_collections_cost_under_100_mib(data_dir):
    s = Server(data_dir).start()
    try:
        c = Client(s.port)
        base = rss_mib(s.proc.pid)
        for start in range(0, 10000, 1000):
            replies = c.pipeline([("VCREATE", f"c{i}", "DIM", "128", "INDEX", "HNSW") for i in range(start, start + 1000)])
            assert replies == ["OK"] * 1000
        assert c.call("DBSIZE") == 10000
        grown = rss_mib(s.proc.pid) - base
        assert grown < 100, f"10,000 empty HNSW collections took {grown:.0f} MiB"
    finally:
        s.kill()
