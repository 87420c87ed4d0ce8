"""The corruption matrix of issue 8: each kind of file of a stopped store (the WAL, an SST of every column
family, MANIFEST, CURRENT, OPTIONS) flipped in the middle, cut to half, or deleted. For every case latentd
either refuses to start with a message that says the store is damaged and names the file (or says to use
--recover-truncate for the WAL), or starts with every acknowledged write present. No case crashes, and no
acknowledged write disappears without a report. docs/storage.md ("Faults") describes each outcome."""
import glob
import json
import os
import shutil
import struct
import tempfile
import time

import pytest

from conftest import Server
from store_files import column_family
from resp_client import Client, pairs

N = 300
CFS = ["meta", "vectors", "keys", "attrs", "index", "seen"]


@pytest.fixture(scope="module")
def base_store():
    root = tempfile.mkdtemp(prefix="latentdb-matrix-")
    d = os.path.join(root, "s")
    s = Server(d, "--fsync", "always").start()
    c = Client(s.port)
    c.call("VCREATE", "h", "DIM", 8, "INDEX", "HNSW")
    for i in range(N):
        c.call("VADD", "h", "FP32", struct.pack("<8f", *[float(i + k) for k in range(8)]), f"e{i}",
               "SETATTR", json.dumps({"i": i}))
    c.call("VSETSEEN", "h", "e1", "e2", "e3")
    for _ in range(200):
        info = c.call("VINFO", "h")
        kv = pairs(info)
        if kv["index-state"] == "ready" and kv["pending"] == "0":
            break
        time.sleep(0.05)
    s.stop()  # clean stop: memtables flushed, every column family has an SST
    yield d
    shutil.rmtree(root, ignore_errors=True)


def targets(d):
    out = {"WAL": sorted(glob.glob(d + "/*.log"), key=os.path.getsize)[-1],
           "MANIFEST": glob.glob(d + "/MANIFEST-*")[0], "CURRENT": d + "/CURRENT",
           "OPTIONS": sorted(glob.glob(d + "/OPTIONS-*"))[-1]}
    for f in glob.glob(d + "/*.sst"):
        out["SST " + column_family(f)] = f
    return out


def damage(path, action):
    if action == "delete":
        os.remove(path)
        return
    b = open(path, "rb").read()
    used = len(b.rstrip(b"\0")) or len(b)
    with open(path, "r+b") as f:
        if action == "truncate":
            f.truncate(used // 2)
        else:
            f.seek(used // 2)
            f.write(bytes(x ^ 0xFF for x in b[used // 2:used // 2 + 8]))


KINDS = ["WAL", "MANIFEST", "CURRENT", "OPTIONS"] + ["SST " + cf for cf in CFS]


@pytest.mark.parametrize("action", ["flip", "truncate", "delete"])
@pytest.mark.parametrize("kind", KINDS)
def test_damaged_file_is_refused_clearly_or_loses_nothing(base_store, kind, action):
    root = tempfile.mkdtemp(prefix="latentdb-matrix-case-")
    d = os.path.join(root, "s")
    try:
        shutil.copytree(base_store, d)
        files = targets(d)
        assert set(files) == set(KINDS), files
        damage(files[kind], action)
        server = Server(d)
        try:
            server.start(timeout=30)
        except RuntimeError as e:
            message = str(e)
            code = server.proc.wait(timeout=10)
            assert code == 1, f"latentd did not exit with its error status ({code}): {message}"
            assert "damaged" in message, message
            if kind == "WAL":
                assert "--recover-truncate" in message, message
            elif kind in ("MANIFEST", "CURRENT"):
                assert "CURRENT or MANIFEST" in message or os.path.basename(files[kind]) in message, message
            else:
                # By number: for a missing table RocksDB names the legacy 000027.ldb it also tried.
                assert os.path.splitext(os.path.basename(files[kind]))[0] in message, message
            return
        try:
            c = Client(server.port)
            assert int(c.call("VCARD", "h")) == N
            members = c.pipeline([["VISMEMBER", "h", f"e{i}"] for i in range(N)])
            assert all(m == 1 for m in members)
            emb = c.call("VEMB", "h", "e7")
            assert [float(x) for x in emb] == [float(7 + k) for k in range(8)]
            # Attributes are the value or a reported error, never a silent null.
            attrs = c.call("VGETATTR", "h", "e5")
            assert attrs == b'{"i": 5}' or (hasattr(attrs, "args") and "storage error" in str(attrs)), attrs
        finally:
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
