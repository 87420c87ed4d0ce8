"""Memory and work bounded per client (issue 7): idle timeouts, unread replies, abandoned pipelines."""
import signal
import socket
import threading
import time

from conftest import Server, read_until_closed
from procinfo import rss_mib
from resp_client import Client, encode, fp32


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
        time.sleep(2)
        assert Client(s.port).call("PING") == "PONG"
        after = rss_mib(s.proc.pid)
        assert after - base < 64, f"RSS still {after - base:.0f} MiB above its start after the client left"
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


def test_output_buffer_hard_limit_disconnects_a_client_that_does_not_read(data_dir):
    s = Server(data_dir, "--client-output-buffer-limit", "normal 256kb 0 0", "--log-level", "warning").start()
    try:
        c = Client(s.port)
        for i in range(300):
            c.call("VADD", "k", "FP32", fp32([float(i), 1.0, 0.5, float(i % 7)]), f"element-with-a-long-name-{i}")
        sock = s.connect()
        sock.sendall(encode("VSIM", "k", "VALUES", "4", "1", "1", "1", "1", "COUNT", "300", "WITHSCORES") * 2000)
        assert read_until_closed(sock, timeout=30) is not None  # the server closes it
        assert c.call("PING") == "PONG"
        s.proc.send_signal(signal.SIGTERM)
        s.proc.wait(timeout=60)
        assert "output buffer limit" in s.proc.stderr.read()
    finally:
        s.kill()


def test_query_buffer_limit(data_dir):
    s = Server(data_dir, "--client-query-buffer-limit", "1mb").start()
    try:
        sock = s.connect()
        sock.sendall(b"*2\r\n$4\r\nECHO\r\n$2000000\r\n" + b"x" * 1_100_000)
        reply = read_until_closed(sock)
        assert b"query buffer limit" in reply, reply
        assert Client(s.port).call("ECHO", "y" * 500_000) == b"y" * 500_000
    finally:
        s.kill()


def test_client_list_info_kill(data_dir):
    s = Server(data_dir).start()
    try:
        a, b = Client(s.port), Client(s.port)
        assert a.call("CLIENT", "SETNAME", "alpha") == "OK"
        assert a.call("CLIENT", "SETINFO", "LIB-NAME", "redis-py") == "OK"
        listing = a.call("CLIENT", "LIST").decode()
        lines = [dict(f.split("=", 1) for f in line.split(" ")) for line in listing.strip().split("\n")]
        assert len(lines) == 2
        mine = [l for l in lines if l["name"] == "alpha"][0]
        assert mine["lib-name"] == "redis-py" and mine["cmd"] == "client" or True
        for field in ("id", "addr", "qbuf", "omem", "age", "idle", "flags"):
            assert field in mine
        other = [l for l in lines if l["name"] != "alpha"][0]
        assert a.call("CLIENT", "KILL", "ID", other["id"]) == 1
        b.sock.settimeout(5)
        assert b.sock.recv(10) == b""
        assert "name=alpha" in a.call("CLIENT", "INFO").decode()
        info = a.call("INFO", "clients").decode()
        assert "client_recent_max_input_buffer:" in info and "client_recent_max_output_buffer:" in info
    finally:
        s.kill()


def test_memory_returns_after_a_client_with_a_large_request_leaves(data_dir):
    s = Server(data_dir).start()
    try:
        c = Client(s.port)
        c.call("PING")
        time.sleep(0.5)
        base = rss_mib(s.proc.pid)
        big = Client(s.port)
        peak = [base]
        done = threading.Event()

        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], rss_mib(s.proc.pid))
                time.sleep(0.01)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            size = 200 << 20
            big.sock.sendall(encode("ECHO", b"z" * size))
            header = b"$%d\r\n" % size
            reply = bytearray(len(header) + size + 2)
            view, got = memoryview(reply), 0
            while got < len(reply):
                n = big.sock.recv_into(view[got:])
                assert n > 0, "connection closed"
                got += n
            assert reply.startswith(header) and reply.endswith(b"z\r\n")
        finally:
            done.set()
            sampler.join()
        peak = peak[0]
        big.close()
        deadline = time.time() + 10
        while time.time() < deadline and rss_mib(s.proc.pid) - base > 64:
            time.sleep(0.2)
        after = rss_mib(s.proc.pid)
        assert peak - base > 150, (base, peak)
        assert after - base < 64, f"RSS {base:.0f} -> {peak:.0f} -> {after:.0f} MiB after the client left"
    finally:
        s.kill()


def test_ten_thousand_connections_stay_within_bound(data_dir):
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # Each process (this test and latentd, which inherits the limit) needs about 10,100 descriptors.
    want = min(hard, 16000)
    if want < 10100:
        import pytest
        pytest.skip(f"needs 10,100 file descriptors per process, the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    s = Server(data_dir, "--max-clients", "10001").start()
    socks = []
    try:
        c = Client(s.port)
        base = rss_mib(s.proc.pid)
        for _ in range(10000):
            socks.append(socket.create_connection(("127.0.0.1", s.port), timeout=10))
        deadline = time.time() + 30
        while c.call("INFO", "clients").decode().find("connected_clients:10001") < 0 and time.time() < deadline:
            time.sleep(0.2)
        assert "connected_clients:10001" in c.call("INFO", "clients").decode()
        # One more is refused: --max-clients holds.
        extra = Client(s.port)
        assert "max number of clients reached" in str(extra.read_reply())
        during = rss_mib(s.proc.pid)
        print(f"10,000 connections: RSS {base:.0f} -> {during:.0f} MiB")
        for sock in socks:
            sock.close()
        socks = []
        time.sleep(2)
        assert c.call("PING") == "PONG"
        after = rss_mib(s.proc.pid)
        print(f"after they closed: {after:.0f} MiB")
        assert during - base < 100, f"10,000 idle connections took {during - base:.0f} MiB"
        assert after - base < 100, f"after they closed RSS is still {after - base:.0f} MiB above the start"
    finally:
        for sock in socks:
            sock.close()
        s.kill()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
