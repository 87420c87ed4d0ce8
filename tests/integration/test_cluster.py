"""Cluster membership in a real etcd (issue #14, first part): nodes join under leases, `latentctl cluster
status` lists them, a killed node's key expires with its lease, a stopped one leaves at once, and a node id
already held by a live node is refused. etcd (Debian's etcd-server) runs on loopback ports this test picks."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import LATENTCTL, Server, wait_for
from resp_client import Client

ETCD = shutil.which("etcd")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def etcd():
    if not ETCD:
        pytest.skip("etcd is not installed (make test-deps installs etcd-server)")
    data = tempfile.mkdtemp(prefix="latentd-etcd-")
    client, peer = free_port(), free_port()
    url = f"http://127.0.0.1:{client}"
    proc = subprocess.Popen([ETCD, "--name", "t", "--data-dir", data, "--listen-client-urls", url, "--advertise-client-urls", url,
                             "--listen-peer-urls", f"http://127.0.0.1:{peer}", "--initial-advertise-peer-urls",
                             f"http://127.0.0.1:{peer}", "--initial-cluster", f"t=http://127.0.0.1:{peer}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", client), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    yield url
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    shutil.rmtree(data, ignore_errors=True)


def status(url):
    out = subprocess.run([LATENTCTL, "cluster", "status", "--etcd", url, "--cluster-name", "t1"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def cluster_info(server):
    text = Client(server.port).call("INFO", "cluster").decode()
    return dict(line.split(":", 1) for line in text.split("\r\n") if ":" in line)


def test_nodes_join_leave_and_expire(etcd):
    dirs = [tempfile.mkdtemp(prefix="latentd-cl-") for _ in range(4)]
    nodes = []
    try:
        for i in range(3):
            nodes.append(Server(dirs[i], "--cluster", etcd, "--cluster-name", "t1", "--node-id", f"n{i}",
                                "--cluster-lease-ttl", "2").start())
        wait_for(lambda: "leader" in status(etcd) and status(etcd).count("replica") == 2, "n0 elected, the others following")
        out = status(etcd)
        assert "3 node(s)" in out, out
        for i, n in enumerate(nodes):
            line = next(l for l in out.splitlines() if l.startswith(f"n{i} "))
            assert f"127.0.0.1:{n.port}" in line and " up " in line and ("leader" if i == 0 else "replica") in line, line
        info = cluster_info(nodes[0])
        assert info["cluster_enabled"] == "1" and info["cluster_node_id"] == "n0" and info["cluster_membership"] == "member"
        time.sleep(1.0)  # a renewal refreshes the member list
        assert cluster_info(nodes[0])["cluster_known_nodes"] == "3"
        # A node id a live node holds is refused, with the holder named.
        clash = subprocess.run([*Server(dirs[3]).args_for_test(), "--cluster", etcd, "--cluster-name", "t1", "--node-id", "n1"],
                               capture_output=True, text=True, timeout=60)
        assert clash.returncode != 0 and "already a member" in clash.stderr and f"127.0.0.1:{nodes[1].port}" in clash.stderr
        # kill -9: the key goes when the lease runs out (2 s), not before the node stops renewing.
        nodes[2].kill(signal.SIGKILL)
        assert "n2 " in status(etcd)
        deadline = time.time() + 10
        while "n2 " in status(etcd) and time.time() < deadline:
            time.sleep(0.2)
        assert "n2 " not in status(etcd), "a killed node's key expires with its lease"
        # SIGTERM: the node revokes its lease and leaves at once.
        nodes[1].stop()
        out = status(etcd)
        assert "1 node(s)" in out and "n1 " not in out, out
        # Without a cluster nothing changes: INFO says so.
        single = Server(dirs[3]).start()
        try:
            assert cluster_info(single)["cluster_enabled"] == "0"
        finally:
            single.stop()
    finally:
        for n in nodes:
            n.stop()
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)


def test_unreachable_etcd_and_bad_cluster_flags_stop_latentd_with_a_message(tmp_path):
    port = free_port()  # nothing listens there
    for flags, words in [(["--cluster", f"http://127.0.0.1:{port}"], "no etcd endpoint answered"),
                         (["--cluster", "not a url"], "not an etcd endpoint URL"),
                         (["--cluster", f"http://127.0.0.1:{port}", "--node-id", "bad/id"], "node-id takes"),
                         (["--advertise", "nohost"], "advertise takes HOST:PORT"),
                         (["--cluster-lease-ttl", "0"], "cluster-lease-ttl")]:
        out = subprocess.run([*Server(str(tmp_path / "d")).args_for_test(), *flags], capture_output=True, text=True, timeout=60)
        assert out.returncode != 0 and words in out.stderr, (flags, out.stderr)


def leader_of(url):
    for line in status(url).splitlines():
        if " up " in line and " leader " in line:
            return line.split()[0]
    return None


def test_failover_elects_the_most_advanced_replica_and_fences_the_old_leader(etcd):
    dirs = [tempfile.mkdtemp(prefix="latentd-fo-") for _ in range(3)]
    nodes = {}
    flags = ["--cluster", etcd, "--cluster-name", "t1", "--cluster-lease-ttl", "2"]
    try:
        for i in range(3):
            nodes[f"n{i}"] = Server(dirs[i], *flags, "--node-id", f"n{i}").start()
        wait_for(lambda: leader_of(etcd) == "n0" and status(etcd).count("replica") == 2, "n0 leading two replicas")
        # A node that is not the leader refuses writes as a replica.
        err = Client(nodes["n1"].port).call("VADD", "v", "VALUES", "2", "1", "0", "x")
        assert str(err).startswith("READONLY"), err
        # Writes acknowledged by WAIT 1 on the leader, then kill -9 of the leader.
        c = Client(nodes["n0"].port)
        acknowledged = []
        for i in range(300):
            assert c.call("VADD", "v", "VALUES", "2", "1", str(i), f"e{i}") == 1
            if i % 10 == 9:
                assert c.call("WAIT", "1", "5000") >= 1
                acknowledged = [f"e{k}" for k in range(i + 1)]
        t0 = time.time()
        nodes["n0"].kill(signal.SIGKILL)
        wait_for(lambda: leader_of(etcd) in ("n1", "n2"), "a new leader", timeout=20)
        failover_seconds = time.time() - t0
        new = nodes[leader_of(etcd)]
        other = nodes["n2" if leader_of(etcd) == "n1" else "n1"]
        present = Client(new.port).pipeline([("VISMEMBER", "v", a) for a in acknowledged])
        assert all(p == 1 for p in present), "every write WAIT acknowledged is on the new leader"
        assert failover_seconds < 10, failover_seconds
        # The new leader takes writes; the other replica follows it.
        cn = Client(new.port)
        wait_for(lambda: cn.call("VADD", "v", "VALUES", "2", "5", "5", "after") in (0, 1), "writes on the new leader")
        assert cn.call("WAIT", "1", "10000") == 1  # the same connection: WAIT covers its own writes
        assert Client(other.port).call("VISMEMBER", "v", "after") == 1
        # The old leader comes back as a replica of the new one and converges.
        nodes["n0"].start()
        wait_for(lambda: Client(nodes["n0"].port).call("VISMEMBER", "v", "after") == 1, "the old leader to follow", timeout=30)
        assert Client(nodes["n0"].port).call("ROLE")[0] == b"slave"
        # A frozen leader: another is elected when its lease runs out; woken up, it refuses writes at once.
        frozen = nodes[leader_of(etcd)]
        frozen.proc.send_signal(signal.SIGSTOP)
        try:
            wait_for(lambda: leader_of_excluding(etcd, frozen) is not None, "a leader other than the frozen one", timeout=20)
        finally:
            frozen.proc.send_signal(signal.SIGCONT)
        err = Client(frozen.port).call("VADD", "v", "VALUES", "2", "9", "9", "stale")
        assert isinstance(err, Exception) and str(err).split()[0] in ("CLUSTERDOWN", "READONLY"), err
        wait_for(lambda: Client(frozen.port).call("ROLE")[0] == b"slave", "the woken leader to follow the new one")
        leader = nodes[leader_of(etcd)]
        assert Client(leader.port).call("VISMEMBER", "v", "stale") == 0
        print(f"failover after kill -9: {failover_seconds:.2f} s")
    finally:
        for n in nodes.values():
            n.proc.send_signal(signal.SIGCONT) if n.proc and n.proc.poll() is None else None
            n.stop()
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)


def leader_of_excluding(url, server):
    for line in status(url).splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[2] == "up" and parts[3] == "leader" and parts[1] != f"127.0.0.1:{server.port}":
            return parts[0]
    return None
