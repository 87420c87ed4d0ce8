"""A full disk never aborts latentd or costs an acknowledged write (issue 8).

The data directory is a small tmpfs the test mounts (loopback only; needs root, as CI runs). A filler file
takes most of it; writes then fill the rest until latentd's free-space guard (--min-free-disk, 64 MiB here)
refuses them, before RocksDB could meet ENOSPC. For each --fsync mode: no abort, writes answer MISCONF, reads
keep working, INFO says why; once the filler is deleted writes resume by themselves; every acknowledged write
is intact, also after a restart. A restart while the disk is still full starts read-only."""
import os
import struct
import subprocess
import tempfile
import time

import pytest

from conftest import Server
from resp_client import Client, RespError

DIM = 1024


def mount_tmpfs(size_mb):
    mnt = tempfile.mkdtemp(prefix="latentdb-full-")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", mnt], capture_output=True)
    if r.returncode != 0:
        os.rmdir(mnt)
        pytest.skip(f"cannot mount a tmpfs (needs root): {r.stderr!r}")
    return mnt


def unmount(mnt):
    subprocess.run(["umount", "-l", mnt])
    os.rmdir(mnt)


def vector(i):
    return struct.pack("<%df" % DIM, *([float(i % 1000 + 1)] + [1.0] * (DIM - 1)))


def fill_until_refused(c, start, acknowledged, limit=400_000):
    """Pipelined VADDs until the server refuses them; returns the first refusal."""
    i = start
    while i < start + limit:
        replies = c.pipeline([["VADD", "c", "FP32", vector(j), f"e{j}"] for j in range(i, i + 500)])
        for j, r in zip(range(i, i + 500), replies):
            if isinstance(r, RespError):
                return str(r), j
            acknowledged.add(j)
        i += 500
    raise AssertionError("the disk never filled")


def info_persistence(c):
    text = c.call("INFO", "persistence").decode()
    return dict(line.split(":", 1) for line in text.split("\r\n") if ":" in line)


def check_acknowledged(c, acknowledged):
    """Every acknowledged element is a member; one in 20 has its vector read back (VEMB of a 1,024-d
    vector is 1,024 bulk strings: all of them would take this client minutes)."""
    ids = sorted(acknowledged)
    for k in range(0, len(ids), 2000):
        chunk = ids[k:k + 2000]
        for j, member in zip(chunk, c.pipeline([["VISMEMBER", "c", f"e{j}"] for j in chunk])):
            assert member == 1, f"acknowledged e{j} is missing after the disk filled"
    sample = ids[::20]
    for j, emb in zip(sample, c.pipeline([["VEMB", "c", f"e{j}"] for j in sample])):
        assert isinstance(emb, list) and float(emb[0]) == float(j % 1000 + 1), f"e{j} has a wrong vector"


@pytest.mark.parametrize("fsync", ["always", "everysec", "no"])
def test_full_disk_refuses_writes_keeps_reads_and_resumes(fsync):
    mnt = mount_tmpfs(300)
    data = os.path.join(mnt, "data")
    filler = os.path.join(mnt, "filler")
    server = Server(data, "--fsync", fsync, "--min-free-disk", "64mb").start()
    try:
        c = Client(server.port)
        assert c.call("VCREATE", "c", "DIM", DIM) == "OK"
        with open(filler, "wb") as f:
            f.write(b"\0" * (120 << 20))
        acknowledged = set()
        error, failed_at = fill_until_refused(c, 0, acknowledged)
        assert error.startswith("MISCONF") and "min-free-disk" in error, error
        assert server.proc.poll() is None, "latentd died on a full disk"
        # Reads keep working while writes are refused.
        # At least every acknowledged write (a batch whose WAL sync failed was refused, not undone: it
        # may be visible, it was never promised).
        assert int(c.call("VCARD", "c")) >= len(acknowledged)
        assert c.call("VEMB", "c", "e0") is not None
        assert isinstance(c.call("VSIM", "c", "ELE", "e1", "COUNT", "3"), list)
        time.sleep(1.5)
        info = info_persistence(c)
        assert info["storage_writes_ok"] == "0" and "min-free-disk" in info["storage_last_error"], info
        again = c.call("VADD", "c", "FP32", vector(1), "late")
        assert isinstance(again, RespError) and str(again).startswith("MISCONF")
        # Free the space: writes resume without a restart.
        os.remove(filler)
        deadline = time.time() + 60
        while time.time() < deadline:
            r = c.call("VADD", "c", "FP32", vector(7), "after-free")
            if not isinstance(r, RespError):
                break
            time.sleep(0.5)
        else:
            raise AssertionError(f"writes did not resume after space was freed: {r}")
        info = info_persistence(c)
        assert info["storage_writes_ok"] == "1" and int(info["storage_resumes"]) >= 1, info
        check_acknowledged(c, acknowledged)
        server.stop()
        assert server.proc.returncode == 0
        server.start()
        c = Client(server.port)
        check_acknowledged(c, acknowledged)
        assert c.call("VEMB", "c", "after-free") is not None
    finally:
        server.kill()
        unmount(mnt)


def test_restart_on_a_full_disk_starts_read_only():
    mnt = mount_tmpfs(300)
    data = os.path.join(mnt, "data")
    filler = os.path.join(mnt, "filler")
    server = Server(data, "--fsync", "always", "--min-free-disk", "64mb").start()
    try:
        c = Client(server.port)
        c.call("VCREATE", "c", "DIM", DIM)
        with open(filler, "wb") as f:
            f.write(b"\0" * (120 << 20))
        acknowledged = set()
        fill_until_refused(c, 0, acknowledged)
        server.kill()
        # Whatever space is left goes too, so the restart cannot write a new log or manifest.
        with open(os.path.join(mnt, "filler2"), "wb") as f:
            try:
                while True:
                    f.write(b"\0" * (1 << 20))
            except OSError:
                pass
        server.start()
        c = Client(server.port)
        check_acknowledged(c, acknowledged)
        info = info_persistence(c)
        assert info["storage_read_only"] == "1", info
        r = c.call("VADD", "c", "FP32", vector(3), "x")
        assert isinstance(r, RespError) and str(r).startswith("MISCONF") and "read-only" in str(r), r
        server.stop()
        os.remove(filler)
        os.remove(os.path.join(mnt, "filler2"))
        server.start()
        c = Client(server.port)
        assert not isinstance(c.call("VADD", "c", "FP32", vector(3), "x"), RespError)
        check_acknowledged(c, acknowledged)
    finally:
        server.kill()
        unmount(mnt)
