"""Replication (issue #13): a leader and replicas as real processes on loopback ports."""
import os
import random
import shutil
import signal
import tempfile
import threading
import time

import numpy as np
import pytest

from conftest import Server, wait_for
from resp_client import Client, RespError, pairs, text


def info(server, section="replication", password=None):
    c = Client(server.port)
    if password:
        assert c.call("AUTH", password) == "OK"
    out = c.call("INFO", section).decode()
    return dict(line.split(":", 1) for line in out.split("\r\n") if ":" in line)


def in_step(leader, replica):
    """The replica acknowledged everything the leader has streamed."""
    return int(info(replica)["slave_repl_offset"]) == int(info(leader)["master_repl_offset"])


@pytest.fixture
def dirs():
    made = [tempfile.mkdtemp(prefix="latentd-repl-") for _ in range(3)]
    yield made
    for d in made:
        shutil.rmtree(d, ignore_errors=True)


def replica_of(leader, data_dir, *extra):
    return Server(data_dir, "--replicaof", f"127.0.0.1 {leader.port}", *extra).start()


def test_two_replicas_copy_then_stream_and_answer_as_the_leader(dirs):
    leader = Server(dirs[0]).start()
    replicas = []
    try:
        c = Client(leader.port)
        rng = np.random.default_rng(7)
        base = rng.standard_normal((2000, 16)).astype("<f4")
        assert c.call("VCREATE", "v", "DIM", "16", "INDEX", "HNSW") == "OK"
        assert all(r == 1 for r in c.pipeline([("VADD", "v", "FP32", x.tobytes(), f"e{i}", "SETATTR", f'{{"g":{i % 5}}}')
                                               for i, x in enumerate(base)]))
        wait_for(lambda: pairs(c.call("VINFO", "v"))["index-state"] == "ready" and pairs(c.call("VINFO", "v"))["pending"] == "0",
                 what="the leader's index")
        # The copy carries the index: the replicas serve it without building it.
        replicas = [replica_of(leader, d) for d in dirs[1:]]
        for r in replicas:
            wait_for(lambda: info(r).get("master_link_status") == "up", what="replica link")
            v = pairs(Client(r.port).call("VINFO", "v"))
            assert v["builds"] == "0" and int(v["indexed"]) >= 1900, v
        # Writes of every kind keep streaming while the replicas serve.
        more = rng.standard_normal((500, 16)).astype("<f4")
        assert all(r == 1 for r in c.pipeline([("VADD", "v", "FP32", x.tobytes(), f"m{i}") for i, x in enumerate(more)]))
        assert c.call("VREM", "v", "e3") == 1
        assert c.call("VSETATTR", "v", "e4", '{"g":9}') == 1
        assert c.pipeline([("MULTI",), ("VADD", "t", "VALUES", "2", "1", "0", "a"), ("VADD", "t", "VALUES", "2", "0", "1", "b"),
                           ("EXEC",)])[-1] == [1, 1]
        assert c.call("VCREATE", "gone", "DIM", "2") == "OK"
        assert c.call("PEXPIRE", "gone", "300") == 1
        assert c.call("VCREATE", "later", "DIM", "2") == "OK"
        assert c.call("EXPIRE", "later", "1000") == 1
        assert c.call("WAIT", "2", "10000") == 2
        time.sleep(0.5)  # "gone" expires on the leader: its DEL reaches the replicas
        assert c.call("EXISTS", "gone") == 0
        assert c.call("WAIT", "2", "10000") == 2
        q = rng.standard_normal(16).astype("<f4").tobytes()
        # A replica's result cache follows the stream: a cached answer is not served after a write changed it.
        near = ("VSIM", "t", "VALUES", "2", "1", "0.1", "COUNT", "1")
        for expected, write in ((b"c", ("VADD", "t", "VALUES", "2", "1", "0.1", "c")), (b"a", ("VREM", "t", "c"))):
            for r in replicas:
                rc = Client(r.port)
                hits = int(info(r, "stats")["query_cache_hits"])
                assert rc.call(*near) == rc.call(*near)
                assert int(info(r, "stats")["query_cache_hits"]) >= hits + 1  # served from the cache
            assert c.call(*write) == 1
            assert c.call("WAIT", "2", "10000") == 2
            for r in replicas:
                assert Client(r.port).call(*near) == [expected], write
        for r in replicas:
            rc = Client(r.port)
            assert rc.call("VCARD", "v") == c.call("VCARD", "v") == 2499
            assert rc.call("VCARD", "t") == 2
            assert rc.call("VISMEMBER", "v", "e3") == 0
            assert rc.call("VGETATTR", "v", "e4") == b'{"g":9}'
            assert rc.call("EXISTS", "gone") == 0
            assert 990_000 < rc.call("PTTL", "later") <= 1_000_000
            assert rc.call("VEMB", "v", "m7") == c.call("VEMB", "v", "m7")
            for extra in [("TRUTH",), ("EF", "1000"), ("FILTER", ".g == 2", "EF", "1000")]:
                args = ("VSIM", "v", "FP32", q, "COUNT", "10", "WITHSCORES", *extra)
                assert rc.call(*args) == c.call(*args), extra
            # Read-only, as a Redis replica.
            err = rc.call("VADD", "v", "VALUES", "16", *["1"] * 16, "x")
            assert isinstance(err, RespError) and str(err).startswith("READONLY")
            assert isinstance(rc.call("DEL", "v"), RespError)
            role = rc.call("ROLE")
            assert role[0] == b"slave" and role[3] == b"connected" and role[2] == leader.port
        role = c.call("ROLE")
        assert role[0] == b"master" and len(role[2]) == 2
        i = info(leader)
        assert i["role"] == "master" and i["connected_slaves"] == "2"
        assert "state=online" in i["slave0"] and "state=online" in i["slave1"]
        ri = info(replicas[0])
        assert ri["role"] == "slave" and ri["replica_full_syncs"] == "1" and ri["slave_read_only"] == "1"
    finally:
        for r in replicas:
            r.stop()
        leader.stop()


def test_a_restarted_replica_resumes_and_moves_only_what_it_missed(dirs):
    leader = Server(dirs[0]).start()
    replica = None
    try:
        c = Client(leader.port)
        assert c.pipeline([("VADD", "v", "VALUES", "4", "1", str(i), "0", "1", f"a{i}") for i in range(300)]) == [1] * 300
        replica = replica_of(leader, dirs[1])
        assert c.call("WAIT", "1", "10000") == 1
        for how in (signal.SIGTERM, signal.SIGKILL):
            replica.kill(how)
            before = int(info(leader)["master_repl_offset"])
            commands = [("VADD", "v", "VALUES", "4", "2", str(i), "1", "0", f"{how}-{i}") for i in range(100)]
            assert c.pipeline(commands) == [1] * 100
            missed = int(info(leader)["master_repl_offset"]) - before
            replica.start()
            assert c.call("WAIT", "1", "10000") == 1
            ri = info(replica)
            # A partial resync: no copy, and exactly the missed stream bytes moved.
            assert ri["replica_partial_syncs"] == "1" and ri["replica_full_syncs"] == "0", ri
            assert ri["replica_copy_bytes"] == "0"
            assert int(ri["replica_stream_bytes"]) == missed, (ri["replica_stream_bytes"], missed)
            assert Client(replica.port).call("VCARD", "v") == c.call("VCARD", "v")
        # A replica further behind than the backlog takes a full copy instead.
        replica.stop()
        assert c.call("CONFIG", "SET", "repl-backlog-size", "16384") == "OK"
        assert c.pipeline([("VADD", "v", "VALUES", "4", "3", str(i), "1", "0", f"big{i}") for i in range(500)]) == [1] * 500
        replica.start()
        assert c.call("WAIT", "1", "10000") == 1
        ri = info(replica)
        assert ri["replica_full_syncs"] == "1" and int(ri["replica_copy_bytes"]) > 0
        assert Client(replica.port).call("VCARD", "v") == c.call("VCARD", "v") == 1000
    finally:
        if replica:
            replica.stop()
        leader.stop()


def writer_until_killed(port, acknowledged, stop, use_wait):
    """VADDs one at a time; an id counts as acknowledged when the write (and WAIT, when used) said so."""
    w = Client(port, timeout=5)
    i = 0
    try:
        while not stop.is_set():
            reply = w.call("VADD", "k", "VALUES", "3", str(i % 7), "1", "2", f"id{i}")
            if reply == 1 and (not use_wait or w.call("WAIT", "1", "2000") >= 1):
                acknowledged.append(f"id{i}")
            i += 1
    except (OSError, ConnectionError):
        pass


@pytest.mark.parametrize("use_wait", [True, False], ids=["WAIT", "min-replicas-to-write"])
def test_acknowledged_writes_survive_kill_9_of_the_leader_and_promotion(dirs, use_wait):
    rng = random.Random(11 if use_wait else 12)
    for trial in range(2):
        for d in dirs[:2]:
            shutil.rmtree(d, ignore_errors=True)
            os.makedirs(d)
        extra = [] if use_wait else ["--min-replicas-to-write", "1", "--min-replicas-max-lag", "5"]
        leader = Server(dirs[0], *extra).start()
        replica = replica_of(leader, dirs[1])
        try:
            wait_for(lambda: info(replica).get("master_link_status") == "up", what="replica link")
            acknowledged, stop = [], threading.Event()
            t = threading.Thread(target=writer_until_killed, args=(leader.port, acknowledged, stop, use_wait))
            t.start()
            time.sleep(rng.uniform(0.3, 1.5))
            leader.kill(signal.SIGKILL)
            stop.set()
            t.join(timeout=30)
            assert len(acknowledged) > 5
            r = Client(replica.port)
            assert r.call("REPLICAOF", "NO", "ONE") == "OK"
            assert r.call("ROLE")[0] == b"master"
            present = r.pipeline([("VISMEMBER", "k", a) for a in acknowledged])
            lost = [a for a, p in zip(acknowledged, present) if p != 1]
            assert not lost, f"trial {trial}: {len(lost)} acknowledged writes lost: {lost[:5]}"
            # The promoted replica takes writes.
            assert r.call("VADD", "k", "VALUES", "3", "1", "1", "1", "after") == 1
        finally:
            replica.stop()
            leader.kill()


def test_min_replicas_to_write_refuses_writes_without_a_replica(dirs):
    leader = Server(dirs[0], "--min-replicas-to-write", "1", "--min-replicas-max-lag", "2").start()
    replica = None
    try:
        c = Client(leader.port)
        err = c.call("VADD", "v", "VALUES", "2", "1", "0", "a")
        assert isinstance(err, RespError) and str(err).startswith("NOREPLICAS")
        assert c.call("VCARD", "v") == 0  # refused before it ran
        replica = replica_of(leader, dirs[1])
        wait_for(lambda: info(leader)["min_slaves_good_slaves"] == "1", what="a good replica")
        assert c.call("VADD", "v", "VALUES", "2", "1", "0", "a") == 1
        assert Client(replica.port).call("VCARD", "v") == 1  # answered only once the replica had it
        assert c.call("CONFIG", "SET", "min-replicas-to-write", "2") == "OK"
        err = c.call("VADD", "v", "VALUES", "2", "0", "1", "b")
        assert isinstance(err, RespError) and str(err).startswith("NOREPLICAS")
    finally:
        if replica:
            replica.stop()
        leader.stop()


def test_replicaof_at_runtime_and_bad_arguments(dirs):
    a = Server(dirs[0]).start()
    b = Server(dirs[1]).start()
    try:
        ca, cb = Client(a.port), Client(b.port)
        assert ca.call("VADD", "v", "VALUES", "2", "1", "0", "x") == 1
        assert cb.call("VADD", "mine", "VALUES", "2", "1", "0", "y") == 1
        assert cb.call("REPLICAOF", "127.0.0.1", str(a.port)) == "OK"
        assert ca.call("WAIT", "1", "10000") == 1
        # A former leader takes the whole copy: its own data is replaced by the leader's.
        assert cb.call("EXISTS", "mine") == 0 and cb.call("VCARD", "v") == 1
        assert cb.call("REPLICAOF", "127.0.0.1", str(a.port)).startswith("OK")
        for bad in [("REPLICAOF", "127.0.0.1"), ("REPLICAOF", "h", "99999"), ("WAIT", "x", "1"), ("WAIT", "1", "-1"),
                    ("PSYNC", "x")]:
            assert isinstance(cb.call(*bad), RespError), bad
        err = cb.call("WAIT", "1", "100")
        assert isinstance(err, RespError) and "replica" in str(err)
        assert isinstance(cb.call("PSYNC", "?", "-1"), RespError)  # no chained replication
        assert cb.call("REPLICAOF", "NO", "ONE") == "OK"
        assert cb.call("VADD", "v", "VALUES", "2", "0", "1", "z") == 1
        wait_for(lambda: info(a)["connected_slaves"] == "0", what="the leader to see its replica leave")
        assert ca.call("WAIT", "0", "0") == 0
    finally:
        b.stop()
        a.stop()


def test_replication_metrics_on_leader_and_replica(dirs):
    from test_metrics import PROMTOOL, fetch, series
    import subprocess

    def with_metrics(server):
        line = server.proc.stdout.readline()
        assert line.startswith("latentd metrics on http://127.0.0.1:"), line
        return line.split(" on ", 1)[1].strip()

    leader = Server(dirs[0], "--metrics-port", "0").start()
    leader_url = with_metrics(leader)
    replica = replica_of(leader, dirs[1], "--metrics-port", "0")
    replica_url = with_metrics(replica)
    try:
        c = Client(leader.port)
        assert c.pipeline([("VADD", "v", "VALUES", "2", "1", str(i), f"e{i}") for i in range(50)]) == [1] * 50
        assert c.call("WAIT", "1", "10000") == 1
        offset = int(info(leader)["master_repl_offset"])
        _, _, text = fetch(leader_url)
        got = series(text)
        assert got['latentd_replication_role{role="master"}'] == 1 and got['latentd_replication_role{role="replica"}'] == 0
        assert got["latentd_replication_connected_replicas"] == 1 and got["latentd_replication_online_replicas"] == 1
        assert got["latentd_replication_offset_bytes"] == offset
        assert got["latentd_replication_max_lag_bytes"] == 0
        _, _, text = fetch(replica_url)
        got = series(text)
        assert got['latentd_replication_role{role="replica"}'] == 1
        assert got["latentd_replication_link_up"] == 1 and got["latentd_replication_offset_bytes"] == offset
        assert got["latentd_replication_full_syncs_total"] == 1
        assert got['latentd_collection_elements{collection="v"}'] == 50
        if PROMTOOL:
            check = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
            assert check.returncode == 0, check.stdout + check.stderr
    finally:
        replica.stop()
        leader.stop()


def test_a_replica_authenticates_with_masterauth(dirs):
    leader = Server(dirs[0], "--requirepass", "s3cret").start()
    wrong = good = None
    try:
        c = Client(leader.port)
        assert c.call("AUTH", "s3cret") == "OK"
        assert c.call("VADD", "v", "VALUES", "2", "1", "0", "a") == 1
        wrong = replica_of(leader, dirs[1], "--masterauth", "nope")
        good = replica_of(leader, dirs[2], "--masterauth", "s3cret")
        assert c.call("WAIT", "1", "10000") == 1
        assert Client(good.port).call("VCARD", "v") == 1
        time.sleep(1.5)
        assert info(wrong)["master_link_status"] == "down"
        assert Client(wrong.port).call("EXISTS", "v") == 0
        assert info(leader, password="s3cret")["connected_slaves"] == "1"
        # CONFIG SET masterauth fixes it at the next attempt (the link retries every second).
        assert Client(wrong.port).call("CONFIG", "SET", "masterauth", "s3cret") == "OK"
        wait_for(lambda: info(wrong)["master_link_status"] == "up", what="the link with the right password")
        assert Client(wrong.port).call("VCARD", "v") == 1
    finally:
        for r in (wrong, good):
            if r:
                r.stop()
        leader.stop()


def test_a_full_copy_carries_indexes_changed_since_their_last_snapshot(dirs):
    leader = Server(dirs[0]).start()
    replica = None
    try:
        c = Client(leader.port)
        rng = np.random.default_rng(3)
        assert c.call("VCREATE", "h", "DIM", "8", "INDEX", "HNSW") == "OK"
        assert all(r == 1 for r in c.pipeline([("VADD", "h", "FP32", x.tobytes(), f"a{i}")
                                               for i, x in enumerate(rng.standard_normal((1500, 8)).astype("<f4"))]))
        ready = lambda: (lambda v: v["index-state"] == "ready" and v["pending"] == "0")(pairs(c.call("VINFO", "h")))
        wait_for(ready, what="the leader's index")
        # Added to the index one by one after its snapshot: the snapshot is now older than the index.
        assert all(r == 1 for r in c.pipeline([("VADD", "h", "FP32", x.tobytes(), f"b{i}")
                                               for i, x in enumerate(rng.standard_normal((300, 8)).astype("<f4"))]))
        wait_for(ready, what="the leader's index to take the new elements")
        replica = replica_of(leader, dirs[1], "--log-level", "info")
        wait_for(lambda: info(replica).get("master_link_status") == "up", what="replica link")
        v = pairs(Client(replica.port).call("VINFO", "h"))
        assert v["builds"] == "0"
        replica.stop()
        loaded = [line for line in replica.proc.stderr.read().splitlines() if "index snapshot loaded" in line]
        # The snapshot in the copy holds all 1,800: nothing was left to add on the replica.
        assert loaded and "indexed=1800" in loaded[-1] and "pending=0" in loaded[-1], loaded
    finally:
        if replica:
            replica.stop()
        leader.stop()
