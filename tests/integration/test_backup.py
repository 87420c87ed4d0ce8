"""Online and offline backup, restore and its checksum check (issue #13)."""
import os
import subprocess
import threading
import time

import numpy as np

from conftest import LATENTCTL, Server
from resp_client import Client


def run(*args, timeout=300):
    return subprocess.run([LATENTCTL, *map(str, args)], capture_output=True, text=True, timeout=timeout)


def test_online_backup_during_writes_restores_everything_acknowledged_before_it(data_dir, tmp_path):
    s = Server(data_dir).start()
    acknowledged = []
    try:
        c = Client(s.port)
        assert c.call("VCREATE", "v", "DIM", "16", "INDEX", "HNSW") == "OK"
        rng = np.random.default_rng(4)
        base = rng.standard_normal((3000, 16)).astype("<f4")
        replies = c.pipeline([("VADD", "v", "FP32", x.tobytes(), f"b{i}") for i, x in enumerate(base)])
        assert all(r == 1 for r in replies)
        # Writes keep coming from another connection while the backup runs.
        stop, written = threading.Event(), []

        def writer():
            w = Client(s.port)
            i = 0
            while not stop.is_set() and i < 20000:
                if w.call("VADD", "v", "VALUES", "16", *([str(1 + i % 7)] * 16), f"w{i}") == 1:
                    written.append(i)
                i += 1

        t = threading.Thread(target=writer)
        t.start()
        try:
            while len(written) < 50:
                pass
            acknowledged = list(written)  # every write acknowledged before the backup began
            out = run("backup", "--host", "127.0.0.1", "--port", s.port, tmp_path / "b1")
        finally:
            stop.set()
            t.join(timeout=60)
        assert out.returncode == 0, out.stderr
        assert "backup written to" in out.stdout and "MANIFEST.latentdb" in out.stdout
        assert not [n for n in os.listdir(data_dir) if n.startswith(".latentdb-backup-")], "the server's checkpoint is gone"
    finally:
        s.stop()

    restored = str(tmp_path / "restored")
    r = run("restore", tmp_path / "b1", "--data-dir", restored)
    assert r.returncode == 0, r.stderr
    s = Server(restored).start()
    try:
        c = Client(s.port)
        card = c.call("VCARD", "v")
        assert card >= 3000 + len(acknowledged), (card, len(acknowledged))
        for i in acknowledged:
            assert c.call("VISMEMBER", "v", f"w{i}") == 1, i
        assert c.call("VISMEMBER", "v", "b2999") == 1
        assert c.call("VEMB", "v", "b7") is not None
        # The collection is whole: search works and the id map agrees with the vectors.
        assert len(c.call("VSIM", "v", "ELE", "b7", "COUNT", "5")) == 5
    finally:
        s.stop()
    verify = run("verify", "--data-dir", restored)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_offline_backup_and_a_damaged_backup_is_refused(data_dir, tmp_path):
    s = Server(data_dir).start()
    try:
        c = Client(s.port)
        c.call("VADD", "k", "VALUES", "3", "1", "2", "3", "a")
        busy = run("backup", "--data-dir", data_dir, tmp_path / "x")
        assert busy.returncode != 0 and "lock" in busy.stderr.lower(), busy.stderr
    finally:
        s.stop()
    out = run("backup", "--data-dir", data_dir, tmp_path / "b")
    assert out.returncode == 0, out.stderr
    again = run("backup", "--data-dir", data_dir, tmp_path / "b")
    assert again.returncode != 0 and "not empty" in again.stderr, again.stderr
    both = run("backup", "--data-dir", data_dir, "--host", "127.0.0.1", tmp_path / "c")
    assert both.returncode != 0 and "either --host" in both.stderr, both.stderr

    sst = sorted(f for f in os.listdir(tmp_path / "b") if f.endswith(".sst"))[0]
    with open(tmp_path / "b" / sst, "r+b") as f:
        f.seek(10)
        b = f.read(1)
        f.seek(10)
        f.write(bytes([b[0] ^ 0x01]))
    bad = run("restore", tmp_path / "b", "--data-dir", tmp_path / "r")
    assert bad.returncode != 0, bad.stdout
    assert f"{sst} fails its checksum" in bad.stderr and "nothing was restored" in bad.stderr, bad.stderr
    assert not os.path.exists(tmp_path / "r")
    os.remove(tmp_path / "b" / sst)
    missing = run("restore", tmp_path / "b", "--data-dir", tmp_path / "r")
    assert missing.returncode != 0 and f"{sst} is missing" in missing.stderr, missing.stderr
    notabackup = run("restore", tmp_path, "--data-dir", tmp_path / "r")
    assert notabackup.returncode != 0 and "not a LatentDB backup" in notabackup.stderr, notabackup.stderr


def test_backup_protocol_errors(server):
    c = Client(server.port)
    assert "no backup 99 is open" in str(c.call("BACKUP", "READ", "99", "CURRENT", "0", "10"))
    assert "no backup 99 is open" in str(c.call("BACKUP", "END", "99"))
    assert "unknown BACKUP subcommand" in str(c.call("BACKUP", "NOW"))
    start = c.call("BACKUP", "START")
    backup_id = start[1]
    assert "has no file" in str(c.call("BACKUP", "READ", str(backup_id), "../etc/passwd", "0", "10"))
    assert "is beyond" in str(c.call("BACKUP", "READ", str(backup_id), "CURRENT", "999999", "10"))
    assert c.call("BACKUP", "READ", str(backup_id), "CURRENT", "0", "100").startswith(b"MANIFEST-")
    assert c.call("BACKUP", "END", str(backup_id)) == "OK"
    assert "must be an integer" in str(c.call("BACKUP", "READ", "x", "CURRENT", "0", "10"))
    # At most four open at once (each pins its checkpoint's files); closing the connection ends them.
    ids = [c.call("BACKUP", "START")[1] for _ in range(4)]
    assert "4 backups are already open" in str(c.call("BACKUP", "START"))
    c.close()
    c = Client(server.port)
    for _ in range(100):
        if not [n for n in os.listdir(server.data_dir) if n.startswith(".latentdb-backup-")]:
            break
        time.sleep(0.05)
    assert not [n for n in os.listdir(server.data_dir) if n.startswith(".latentdb-backup-")], ids
    assert isinstance(c.call("BACKUP", "START")[1], int)
