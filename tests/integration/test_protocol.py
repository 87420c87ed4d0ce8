"""The wire protocol through real sockets: inline and multibulk framing, pipelining, split requests,
protocol errors that close one connection while others carry on, auth, and the tools' handshakes."""
import socket
import subprocess
import time

import pytest

from conftest import LATENTD, Server, read_exactly, read_until_closed
from procinfo import rss_mib
from resp_client import Client, RespError, encode, fp32


def test_inline_and_multibulk_pipelined_in_one_write(server):
    sock = server.connect()
    sock.sendall(b"PING\r\nVADD k VALUES 2 1 0 a\n" + encode("VCARD", "k") + b"ECHO \"two words\"\r\n")
    expected = b"+PONG\r\n:1\r\n:1\r\n$9\r\ntwo words\r\n"
    assert read_exactly(sock, len(expected)) == expected


def test_request_split_byte_by_byte(server):
    sock = server.connect()
    payload = encode("VADD", "k", "VALUES", "3", "1", "2", "3", "elem") + b"VCARD k\r\n"
    for b in payload:
        sock.sendall(bytes([b]))
        time.sleep(0.001)
    expected = b":1\r\n:1\r\n"
    assert read_exactly(sock, len(expected)) == expected


def test_many_pipelined_requests_answered_in_order(server):
    c = Client(server.port)
    commands = [("VADD", "p", "VALUES", "2", str(i), "1", f"e{i}") for i in range(2000)]
    commands += [("VCARD", "p"), ("ECHO", "end")]
    replies = c.pipeline(commands)
    assert replies[:2000] == [1] * 2000
    assert replies[2000:] == [2000, b"end"]


def test_oversized_inline_closes_only_that_connection(server):
    bystander = Client(server.port)
    assert bystander.call("PING") == "PONG"
    sock = server.connect()
    sock.sendall(b"PING\r\n" + b"a" * (64 * 1024 + 10))
    reply = read_until_closed(sock)
    assert reply == b"+PONG\r\n-ERR Protocol error: too big inline request\r\n"
    assert bystander.call("PING") == "PONG"
    assert Client(server.port).call("PING") == "PONG"


@pytest.mark.parametrize("frame,message", [
    (b"*abc\r\n", b"invalid multibulk length"),
    (b"*2\r\n:1\r\n", b"expected '$', got ':'"),
    (b"*1\r\n$-3\r\n", b"invalid bulk length"),
    (b"ECHO \"open\r\n", b"unbalanced quotes in request"),
])
def test_malformed_frames_get_protocol_error_and_close(server, frame, message):
    sock = server.connect()
    sock.sendall(frame)
    assert read_until_closed(sock) == b"-ERR Protocol error: " + message + b"\r\n"
    assert Client(server.port).call("PING") == "PONG"


def test_bulk_over_configured_limit(data_dir):
    s = Server(data_dir, "--proto-max-bulk-len", "4096").start()
    try:
        sock = s.connect()
        sock.sendall(b"*3\r\n$4\r\nECHO\r\n$5000\r\n")
        assert read_until_closed(sock) == b"-ERR Protocol error: invalid bulk length\r\n"
    finally:
        s.kill()


def test_unterminated_request_is_not_answered_until_complete(server):
    sock = server.connect()
    sock.sendall(b"*2\r\n$4\r\nECHO\r\n$5\r\nhel")
    sock.settimeout(0.3)
    with pytest.raises(socket.timeout):
        sock.recv(100)
    sock.sendall(b"lo\r\n")
    assert read_exactly(sock, 11) == b"$5\r\nhello\r\n"


def test_errors_are_clear_and_nothing_is_written(server):
    c = Client(server.port)
    assert c.call("VCREATE", "v", "DIM", "3", "METRIC", "COSINE") == "OK"
    cases = [
        (("FROB",), "ERR unknown command 'FROB'"),
        (("VADD", "v"), "ERR wrong number of arguments for 'vadd' command"),
        (("VADD", "v", "VALUES", "2", "1", "2", "x"), "ERR vector dimension mismatch: collection 'v' has dimension 3, got 2"),
        (("VADD", "v", "VALUES", "3", "1", "nan", "2", "x"), "ERR vector component 1 is NaN or infinite"),
        (("VADD", "v", "VALUES", "3", "0", "0", "0", "x"), "ERR the zero vector has no direction"),
        (("VADD", "v", "VALUES", "3", "1", "1", "1", "x", "SETATTR", "y" * 70_000), "ERR attributes are 70000 bytes"),
        (("VSIM", "v", "VALUES", "3", "1", "1", "1", "COUNT", "0"), "ERR invalid COUNT 0: must be 1 or more"),
        (("VSIM", "v", "VALUES", "3", "1", "1", "1", "COUNT", "-3"), "ERR invalid COUNT -3: must be 1 or more"),
        (("VSIM", "v", "ELE", "ghost"), "ERR element 'ghost' not found in set"),
        (("VSIM", "v", "ELE", "x", "FROM", "nothere"), "ERR no such collection 'nothere'"),
        (("VCREATE", "v", "DIM", "3"), "ERR collection 'v' already exists"),
        (("VCREATE", "w", "DIM", "3", "INDEX", "ANNOY"), "ERR unknown INDEX 'ANNOY'"),
        (("VREBUILD", "nothere"), "ERR no such collection 'nothere'"),
    ]
    for args, prefix in cases:
        reply = c.call(*args)
        assert isinstance(reply, RespError) and str(reply).startswith(prefix), (args, reply)
    assert c.call("VCARD", "v") == 0
    assert c.call("VSIM", "missing", "VALUES", "1", "1") == []


def test_fp32_blobs_round_trip_exactly(server):
    c = Client(server.port)
    v = [0.1, -2.5, 3.14159265, 1e-7]
    assert c.call("VADD", "blob", "FP32", fp32(v), "e1") == 1
    got = [float(x) for x in c.call("VEMB", "blob", "e1")]
    assert fp32(got) == fp32(v)
    hits = c.call("VSIM", "blob", "FP32", fp32(v), "WITHSCORES")
    assert hits[0] == b"e1" and abs(float(hits[1]) - 1.0) < 1e-6


def test_requirepass(data_dir):
    s = Server(data_dir, "--requirepass", "hunter2").start()
    try:
        c = Client(s.port)
        assert str(c.call("VCARD", "x")) == "NOAUTH Authentication required."
        assert str(c.call("AUTH", "nope")).startswith("WRONGPASS")
        assert c.call("AUTH", "hunter2") == "OK"
        assert c.call("VCARD", "x") == 0
        assert s.cli("PING", password="hunter2") == "PONG"
    finally:
        s.kill()


def test_password_from_environment(data_dir):
    import os
    env = dict(os.environ, LATENTD_PASSWORD="fromenv")
    s = Server(data_dir)
    from conftest import LATENTD
    s.proc = subprocess.Popen([LATENTD, "--port", "0", "--data-dir", data_dir], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env)
    s.port = int(s.proc.stdout.readline().strip().rsplit(":", 1)[1])
    try:
        c = Client(s.port)
        assert str(c.call("PING")).startswith("NOAUTH")
        assert c.call("AUTH", "default", "fromenv") == "OK"
    finally:
        s.kill()


def test_max_clients(data_dir):
    s = Server(data_dir, "--max-clients", "2").start()
    try:
        a, b = Client(s.port), Client(s.port)
        assert a.call("PING") == "PONG" and b.call("PING") == "PONG"
        third = s.connect()
        assert read_until_closed(third) == b"-ERR max number of clients reached\r\n"
        a.close()
        time.sleep(0.3)
        assert Client(s.port).call("PING") == "PONG"
    finally:
        s.kill()


def test_redis_cli_and_info(server):
    assert server.cli("VADD", "c", "VALUES", "2", "1", "1", "x") == "1"
    info = server.cli("INFO", "everything")
    for key in ["# Server", "redis_version:", "# Clients", "connected_clients:", "# Stats", "cmdstat_vadd:calls=1",
                "# Memory", "used_memory_vectors:", "# Keyspace", "collections:1"]:
        assert key in info
    assert "# Server" not in server.cli("INFO", "keyspace")
    assert server.cli("VLIST") == "c"


def test_redis_benchmark_runs_against_latentd(server):
    server.cli("VCREATE", "bench", "DIM", "4", "METRIC", "L2")
    out = subprocess.run(["redis-benchmark", "-p", str(server.port), "-n", "2000", "-c", "4", "-P", "8", "-q",
                          "-r", "1000", "VADD", "bench", "VALUES", "4", "1", "2", "3", "__rand_int__", "e:__rand_int__"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "requests per second" in out.stdout, out.stdout + out.stderr
    assert int(server.cli("VCARD", "bench")) > 100
    out = subprocess.run(["redis-benchmark", "-p", str(server.port), "-n", "500", "-c", "4", "-q",
                          "VSIM", "bench", "VALUES", "4", "1", "2", "3", "4", "COUNT", "5"],
                         capture_output=True, text=True, timeout=120)
    assert "requests per second" in out.stdout, out.stdout + out.stderr


# Regression (issue 7): each of these 22-byte unauthenticated frames trapped on integer overflow and
# killed latentd with every client on it.
@pytest.mark.parametrize("frame,message", [
    (b"*9223372036854775808\r\n", b"invalid multibulk length"),
    (b"*99999999999999999999\r\n", b"invalid multibulk length"),
    (b"*-9999999999999999999\r\n", b"invalid multibulk length"),
    (b"*1\r\n$9223372036854775808\r\n", b"invalid bulk length"),
])
def test_overflowing_lengths_do_not_kill_the_server(data_dir, frame, message):
    s = Server(data_dir, "--requirepass", "pw").start()
    try:
        bystander = Client(s.port)
        assert bystander.call("AUTH", "pw") == "OK"
        sock = s.connect()
        sock.sendall(frame)
        assert read_until_closed(sock) == b"-ERR Protocol error: " + message + b"\r\n"
        assert bystander.call("PING") == "PONG"
        assert s.proc.poll() is None
    finally:
        s.kill()


def test_flag_values_that_would_overflow_are_refused(data_dir):
    for flags in (["--proto-max-bulk-len", "9223372036854775807"], ["--query-cache-mb", "9223372036854775807"],
                  ["--max-clients", "0"]):
        out = subprocess.run([LATENTD, "--port", "0", "--data-dir", data_dir] + flags,
                             capture_output=True, text=True, timeout=30)
        assert out.returncode != 0 and flags[0] in out.stderr, (flags, out.stderr)


def test_unauthenticated_client_cannot_make_the_server_buffer_a_large_bulk(data_dir):
    s = Server(data_dir, "--requirepass", "pw").start()
    try:
        before = rss_mib(s.proc.pid)
        sock = s.connect()
        sock.sendall(b"*2\r\n$4\r\nAUTH\r\n$500000000\r\n" + b"x" * 65536)
        assert read_until_closed(sock) == b"-ERR Protocol error: unauthenticated bulk length\r\n"
        sock = s.connect()
        sock.sendall(b"*11\r\n")
        assert read_until_closed(sock) == b"-ERR Protocol error: unauthenticated multibulk length\r\n"
        assert rss_mib(s.proc.pid) - before < 16
        ok = Client(s.port)
        assert ok.call("AUTH", "pw") == "OK"
        assert ok.call("ECHO", "y" * 100000) == b"y" * 100000
    finally:
        s.kill()


# Regression (issue 7): element ids that are not valid UTF-8 collapsed into one element.
def test_binary_element_ids_stay_distinct_and_are_replied_as_sent(server):
    c = Client(server.port)
    assert c.call("VCREATE", "bin", "DIM", "2", "METRIC", "L2") == "OK"
    ids = [b"\xff", b"\xfe", b"\xc3", b"a\r\nb", b"\x00"]
    for i, e in enumerate(ids):
        assert c.call("VADD", "bin", "VALUES", "2", str(i), "0", e) == 1
    assert c.call("VCARD", "bin") == len(ids)
    assert c.call("VSIM", "bin", "VALUES", "2", "2", "0", "COUNT", "1") == [b"\xc3"]
    assert c.call("VEMB", "bin", b"\xfe") == [b"1", b"0"]
    assert c.call("VSETSEEN", "bin", b"\xff", b"\xfe", b"a\r\nb") == 1
    assert c.call("VREM", "bin", b"\xff") == 1
    assert c.call("VISMEMBER", "bin", b"\xfe") == 1
    assert c.call("VISMEMBER", "bin", b"\xff") == 0


def test_binary_garbage_on_the_inline_path_is_refused_at_once(server):
    sock = server.connect()
    sock.sendall(bytes([0x16, 0x03, 0x01, 0x00, 0xA5, 0x01]))  # the start of a TLS ClientHello
    started = time.time()
    reply = read_until_closed(sock, timeout=5)
    assert reply.startswith(b"-ERR Protocol error: invalid byte 0x16 in an inline request")
    assert time.time() - started < 1
    assert Client(server.port).call("PING") == "PONG"
