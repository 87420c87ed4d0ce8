"""RESP3 beside RESP2 over sockets (HELLO, redis-py with protocol=3, redis-cli -3), transactions from
redis-py's default pipeline, and EXEC's all-or-nothing writes under SIGKILL."""
import os
import random
import signal
import struct
import subprocess
import tempfile
import threading
import time

import redis

from conftest import Server
from resp_client import Client, RespError, fp32, pairs


def test_hello_switches_the_connection_to_resp3(server):
    c = Client(server.port)
    assert c.call("VADD", "s", "VALUES", "2", "1", "0", "a", "SETATTR", '{"k":1}') == 1  # RESP2: integer
    hello = dict(c.call("HELLO", "3"))
    assert hello[b"proto"] == 3 and hello[b"server"] == b"redis" and hello[b"version"] == b"8.4.0"
    assert c.call("VADD", "s", "VALUES", "2", "0", "1", "b") is True  # RESP3: boolean
    assert c.call("VEMB", "nope", "a") is None
    assert dict(c.call("VSIM", "s", "VALUES", "2", "1", "0", "WITHSCORES")) == {b"a": 1.0, b"b": 0.5}
    both = dict(c.call("VSIM", "s", "VALUES", "2", "1", "0", "WITHSCORES", "WITHATTRIBS"))
    assert both[b"a"] == [1.0, b'{"k":1}'] and both[b"b"] == [0.5, None]
    info = dict(c.call("VINFO", "s"))
    assert info["quant-type"] == "int8" and info["size"] == 2 and info["vector-dim"] == 2
    assert isinstance(c.call("INFO", "server"), bytes)
    assert isinstance(c.call("HELLO", "4"), RespError)
    assert pairs(c.call("HELLO", "2"))["proto"] == "2"  # the HELLO 2 reply is already RESP2: flat pairs
    assert c.call("VSIM", "s", "VALUES", "2", "1", "0", "WITHSCORES") == [b"a", b"1", b"b", b"0.5"]


def test_redis_py_default_client_and_transactional_pipeline(server):
    for protocol in (2, 3):
        r = redis.Redis(port=server.port, protocol=protocol, decode_responses=True)
        r.flushdb()
        assert r.vset().vadd("items", [1.0, 0.0, 0.0], "a") == 1
        pipe = r.pipeline()  # MULTI ... EXEC
        pipe.vset().vadd("items", [0.0, 1.0, 0.0], "b")
        pipe.vset().vadd("items", [0.0, 0.0, 1.0], "c")
        pipe.vset().vcard("items")
        assert pipe.execute() == [1, 1, 3]
        assert r.exists("items") == 1 and r.type("items") == "vectorset"
        assert r.expire("items", 100) and 0 < r.ttl("items") <= 100
        assert r.info("cluster")["cluster_enabled"] == 0
        with r.pipeline() as p:
            p.watch("items")
            r.vset().vadd("items", [1.0, 1.0, 0.0], "d")  # another connection's write
            p.multi()
            p.vset().vcard("items")
            try:
                p.execute()
                raise AssertionError("EXEC ran although a watched key changed")
            except redis.WatchError:
                pass
        assert r.dbsize() == 1
        r.close()


def test_redis_cli_resp3_session(server):
    server.cli("VADD", "movies", "VALUES", "2", "1", "0", "m1")
    out = subprocess.run(["redis-cli", "-3", "--no-raw", "-p", str(server.port), "VSIM", "movies", "VALUES", "2", "1", "0", "WITHSCORES"],
                         capture_output=True, text=True, timeout=30).stdout
    assert '1# "m1" => (double) 1' in out, out


def _exec_groups(port, stop, acknowledged, group_size):
    c = Client(port)
    i = 0
    try:
        while not stop.is_set():
            commands = [("MULTI",)] + [("VADD", "tx", "FP32", fp32([float(i + 1), float(j + 1)]), f"g{i}-{j}")
                                       for j in range(group_size)] + [("EXEC",)]
            replies = c.pipeline(commands)
            if isinstance(replies[-1], list):
                acknowledged.append(i)
            i += 1
    except (ConnectionError, OSError):
        pass


def test_exec_is_all_or_nothing_across_sigkill():
    data = tempfile.mkdtemp(prefix="latentdb-exec-kill-")
    server = Server(data).start()
    try:
        group_size = 40
        for round_ in range(3):
            stop, acknowledged = threading.Event(), []
            writer = threading.Thread(target=_exec_groups, args=(server.port, stop, acknowledged, group_size))
            writer.start()
            time.sleep(1.0 + random.random())
            server.kill(signal.SIGKILL)
            stop.set()
            writer.join(timeout=30)
            server.start()
            c = Client(server.port)
            counts = {}
            for element in c.call("VRANGE", "tx", "-", "+"):
                group = element.decode().split("-")[0][1:]
                counts[group] = counts.get(group, 0) + 1
            partial = {g: n for g, n in counts.items() if n != group_size}
            assert not partial, f"round {round_}: EXEC groups partly written: {partial}"
            missing = [g for g in acknowledged if str(g) not in counts]
            assert not missing, f"acknowledged EXECs lost: {missing[:10]}"
            assert acknowledged, "no EXEC completed before the kill"
            c.call("DEL", "tx")
    finally:
        server.stop()
        subprocess.run(["rm", "-rf", data])
