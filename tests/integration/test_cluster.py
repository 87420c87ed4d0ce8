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

from conftest import LATENTCTL, Server
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
        out = status(etcd)
        assert "3 node(s)" in out, out
        for i, n in enumerate(nodes):
            line = next(l for l in out.splitlines() if l.startswith(f"n{i} "))
            assert f"127.0.0.1:{n.port}" in line and " up " in line and "leader" in line, line
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
