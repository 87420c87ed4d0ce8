"""HNSW and IVF through the server: recall, read-your-writes during builds, VREBUILD, persistence across
restarts, and latentctl's offline tools."""
import signal
import subprocess
import time

import numpy as np
import pytest

from conftest import LATENTCTL, Server
from resp_client import Client, pairs


def vinfo(c, key):
    return pairs(c.call("VINFO", key))


def wait_ready(c, key, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        info = vinfo(c, key)
        if info["index-state"] == "ready" and info["pending"] == "0":
            return info
        time.sleep(0.1)
    raise AssertionError(f"index not ready: {vinfo(c, key)}")


def clustered(n, dim, seed):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((40, dim)).astype(np.float32)
    return (centres[rng.integers(0, 40, n)] + 0.2 * rng.standard_normal((n, dim))).astype("<f4")


def load(c, key, data, start=0):
    replies = c.pipeline([("VADD", key, "FP32", v.tobytes(), str(start + i)) for i, v in enumerate(data)])
    assert all(r in (0, 1) for r in replies), replies[:3]


def search(c, key, queries, *opts):
    replies = c.pipeline([("VSIM", key, "FP32", q.tobytes(), "COUNT", "10", *opts) for q in queries])
    return [[int(x) for x in r] for r in replies]


@pytest.mark.parametrize("index", ["HNSW", "IVF"])
def test_index_recall_and_persistence_through_the_server(data_dir, index):
    s = Server(data_dir).start()
    c = Client(s.port)
    data = clustered(8000, 24, seed=1)
    queries = clustered(50, 24, seed=2)
    assert c.call("VCREATE", "v", "DIM", "24", "METRIC", "L2", "INDEX", index) == "OK"
    load(c, "v", data)
    # Read-your-writes: the last element written is found at once, whatever the build is doing.
    assert search(c, "v", [data[-1]])[0][0] == len(data) - 1
    info = wait_ready(c, "v")
    assert info["index"] == index and info["indexed"] == "8000"
    exact = search(c, "v", queries, "TRUTH")
    approx = search(c, "v", queries, "EF", "200", "NPROBE", "16")
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx, exact)])
    assert recall >= 0.95, recall
    before = search(c, "v", queries)
    s.kill(signal.SIGTERM)

    s = Server(data_dir).start()
    c = Client(s.port)
    info = vinfo(c, "v")
    assert info["index-state"] == "ready" and info["pending"] == "0", info  # loaded, not rebuilt
    assert search(c, "v", queries) == before
    s.kill()


def test_vrebuild_changes_parameters_and_keeps_serving(server):
    c = Client(server.port)
    data = clustered(6000, 16, seed=3)
    c.call("VCREATE", "r", "DIM", "16", "METRIC", "IP")
    load(c, "r", data)
    assert vinfo(c, "r")["index-state"] == "none"
    assert c.call("VREBUILD", "r", "INDEX", "HNSW", "M", "8", "EF_CONSTRUCTION", "64") == "OK"
    load(c, "r", data[:100] * 2, start=6000)  # writes during the build
    assert len(search(c, "r", data[:5])[0]) == 10
    info = wait_ready(c, "r")
    assert (info["index"], info["m"], info["ef-construction"], info["indexed"]) == ("HNSW", "8", "64", "6100")
    assert c.call("VREBUILD", "r", "NLIST", "10", "INDEX", "IVF") == "OK"
    info = wait_ready(c, "r")
    assert (info["index"], info["nlist"]) == ("IVF", "10")
    assert str(c.call("VREBUILD", "r", "INDEX", "ANNOY")).startswith("ERR unknown INDEX")
    assert str(c.call("VSIM", "r", "VALUES", "1", "1", "EF", "0")).startswith("ERR EF 0 is out of range")


def test_deleted_elements_are_never_returned(server):
    c = Client(server.port)
    data = clustered(7000, 12, seed=4)
    c.call("VCREATE", "d", "DIM", "12", "METRIC", "COSINE", "INDEX", "HNSW")
    load(c, "d", data)
    wait_ready(c, "d")
    gone = list(range(0, 7000, 7))
    assert c.pipeline([("VREM", "d", str(i)) for i in gone]) == [1] * len(gone)
    for row in search(c, "d", data[gone[:200]], "EF", "200"):
        assert not set(row) & set(gone)


def test_latentctl_info_and_offline_rebuild(data_dir):
    s = Server(data_dir).start()
    c = Client(s.port)
    c.call("VCREATE", "items", "DIM", "8", "METRIC", "IP")
    load(c, "items", clustered(3000, 8, seed=5))
    # A running server holds the directory: the offline tools refuse it, clearly, and touch nothing.
    p = subprocess.run([LATENTCTL, "rebuild", "--data-dir", data_dir, "--index", "hnsw"], capture_output=True, text=True)
    assert p.returncode == 1 and "in use by another process" in p.stderr, p.stderr
    p = subprocess.run([LATENTCTL, "info", "--data-dir", data_dir], capture_output=True, text=True)
    assert p.returncode == 1 and "in use by another process" in p.stderr
    s.kill(signal.SIGTERM)

    p = subprocess.run([LATENTCTL, "rebuild", "--data-dir", data_dir, "--collection", "items", "--index", "hnsw", "--m", "12"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "items HNSW: done, 3000 vectors" in p.stdout
    p = subprocess.run([LATENTCTL, "info", "--data-dir", data_dir], capture_output=True, text=True)
    assert p.returncode == 0
    line = next(l for l in p.stdout.splitlines() if l.startswith("items"))
    assert line.split()[:5] == ["items", "8", "IP", "3000", "HNSW"] and "checksum ok" in line, p.stdout

    s = Server(data_dir).start()
    info = vinfo(Client(s.port), "items")
    assert (info["index"], info["m"], info["index-state"], info["pending"]) == ("HNSW", "12", "ready", "0")
    p = subprocess.run([LATENTCTL, "rebuild", "--host", "127.0.0.1", "--port", str(s.port), "--index", "ivf"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and "items: done" in p.stdout, p.stdout + p.stderr
    assert vinfo(Client(s.port), "items")["index"] == "IVF"
    s.kill()
