"""Damage in the middle of the WAL is reported, never silently dropped (issue 8).

1,000 acknowledged --fsync always writes, kill -9 (so they live only in the WAL), then 8 bytes flipped in the
middle of the log: latentd refuses to start, naming the file, the offset and how many writes follow the damage.
--recover-truncate starts it, keeping what precedes the damage and logging how many operations were dropped.
A log cut short at its very end (a write torn by a crash) is tolerated without the flag."""
import glob
import os
import shutil
import signal
import struct
import subprocess
import tempfile

from conftest import LATENTD, Server
from resp_client import Client


def write_and_crash(data_dir, n=1000):
    server = Server(data_dir, "--fsync", "always").start()
    c = Client(server.port)
    c.call("VCREATE", "c", "DIM", 4)
    for i in range(n):
        assert c.call("VADD", "c", "FP32", struct.pack("<4f", i + 1, 1, 2, 3), f"e{i}") == 1
    server.kill(signal.SIGKILL)
    logs = sorted(glob.glob(os.path.join(data_dir, "*.log")), key=os.path.getsize)
    return logs[-1]


def start_fails(data_dir, *extra):
    proc = subprocess.run([LATENTD, "--port", "0", "--data-dir", data_dir] + list(extra),
                          capture_output=True, text=True, timeout=60)
    return proc.returncode, proc.stderr + proc.stdout


def test_damage_in_the_middle_of_the_wal_is_refused_then_recovered_explicitly():
    data_dir = tempfile.mkdtemp(prefix="latentdb-wal-")
    try:
        log = write_and_crash(data_dir)
        # The written part of the log (the file is preallocated with zeroes after it).
        with open(log, "rb") as f:
            content = f.read()
        used = len(content.rstrip(b"\0"))
        assert used > 20_000
        middle = used // 2
        with open(log, "r+b") as f:
            f.seek(middle)
            f.write(bytes(b ^ 0xFF for b in content[middle:middle + 8]))
        rc, out = start_fails(data_dir)
        assert rc != 0, "latentd started on a damaged WAL"
        assert "damaged at byte" in out and os.path.basename(log) in out and "--recover-truncate" in out, out
        assert "write batches" in out
        server = Server(data_dir, "--recover-truncate").start()
        try:
            c = Client(server.port)
            kept = int(c.call("VCARD", "c"))
            assert 0 < kept < 1000
            # What is kept is exactly the prefix before the damage.
            assert all(c.call("VEMB", "c", f"e{i}") is not None for i in range(kept))
            assert c.call("VEMB", "c", f"e{kept}") is None
        finally:
            server.stop()
        err = server.proc.stderr.read()
        assert "--recover-truncate" in err and "dropped" in err, err
        # Recovered: the next start needs no flag.
        Server(data_dir).start().stop()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def test_a_torn_last_record_is_tolerated():
    data_dir = tempfile.mkdtemp(prefix="latentdb-wal-")
    try:
        log = write_and_crash(data_dir, n=200)
        with open(log, "rb") as f:
            content = f.read()
        used = len(content.rstrip(b"\0"))
        with open(log, "r+b") as f:
            f.truncate(used - 5)
        server = Server(data_dir).start()
        try:
            assert int(Client(server.port).call("VCARD", "c")) >= 199
        finally:
            server.stop()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
