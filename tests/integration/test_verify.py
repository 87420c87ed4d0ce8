"""`latentctl verify` on real files (issue #13): clean after a normal run and stop, non-zero with the
damage in words after a byte of an SST file is flipped. The other kinds of damage (a deleted vector
record, a vector changed behind its index snapshot, a damaged snapshot) are in StoreVerifierTests."""
import glob
import os
import struct
import subprocess
import time

from conftest import LATENTCTL, Server
from store_files import column_family
from resp_client import Client, pairs


def test_verify_a_clean_store_then_a_flipped_sst_byte(data_dir):
    s = Server(data_dir).start()
    try:
        c = Client(s.port)
        c.call("VCREATE", "h", "DIM", 8, "INDEX", "HNSW")
        for i in range(2000):
            c.call("VADD", "h", "FP32", struct.pack("<8f", *[float((i * 7 + k) % 97) for k in range(8)]), f"e{i}")
        for _ in range(600):
            kv = pairs(c.call("VINFO", "h"))
            if kv["index-state"] == "ready" and kv["pending"] == "0":
                break
            time.sleep(0.05)
        busy = subprocess.run([LATENTCTL, "verify", "--data-dir", data_dir], capture_output=True, text=True, timeout=120)
        assert busy.returncode != 0 and "lock" in busy.stderr.lower(), busy.stderr
    finally:
        s.stop()  # clean stop: memtables flushed to SST files, the index snapshot saved
    ok = subprocess.run([LATENTCTL, "verify", "--data-dir", data_dir], capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "1 collection(s), 2000 element(s), 1 index snapshot(s)" in ok.stdout and "ok: no problems found" in ok.stdout

    vectors_sst = [f for f in glob.glob(os.path.join(data_dir, "*.sst")) if column_family(f) == "vectors"]
    assert vectors_sst, os.listdir(data_dir)
    path = max(vectors_sst, key=os.path.getsize)
    with open(path, "r+b") as f:
        f.seek(200)  # inside the first data block: the footer and index stay readable, the block's checksum fails
        b = f.read(4)
        f.seek(200)
        f.write(bytes(x ^ 0xFF for x in b))
    bad = subprocess.run([LATENTCTL, "verify", "--data-dir", data_dir], capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0, bad.stdout
    assert "problem: column family vectors:" in bad.stderr and "checksum" in bad.stderr.lower(), bad.stderr
    assert os.path.basename(path) in bad.stderr, bad.stderr
    assert "problem(s) in" in bad.stderr


def info_persistence(c):
    text = c.call("INFO", "persistence").decode()
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def test_verify_online_in_the_background(data_dir):
    s = Server(data_dir).start()
    try:
        c = Client(s.port)
        assert info_persistence(c)["verify_last_status"] == "none"
        c.call("VCREATE", "h", "DIM", 8, "INDEX", "HNSW")
        for i in range(500):
            c.call("VADD", "h", "FP32", struct.pack("<8f", *[float((i * 3 + k) % 89) for k in range(8)]), f"e{i}")
        assert c.call("VERIFY") == "Background verification started"
        deadline = time.time() + 120
        while time.time() < deadline:
            info = info_persistence(c)
            if info["verify_in_progress"] == "0" and info["verify_last_status"] != "none":
                break
            time.sleep(0.1)
        assert info["verify_last_status"] == "ok", info
        assert info["verify_last_problems"] == "0" and info["verify_last_elements"] == "500", info
        assert int(info["verify_last_time"]) > 0 and info["verify_last_problem"] == ""
        assert not os.path.exists(os.path.join(data_dir, ".latentdb-verify")), "the checkpoint is removed afterwards"
        # Writes went on being served around it.
        assert c.call("VADD", "h", "VALUES", 8, *range(8), "late") == 1
        assert "wrong number of arguments" in str(c.call("VERIFY", "now"))
    finally:
        s.stop()
