"""Starting, stopping and crashing: refusals at startup, graceful shutdown, and no acknowledged write lost."""
import os
import random
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

from conftest import LATENTD, Server
from resp_client import Client, fp32


def start_fails(args, timeout=30):
    p = subprocess.run([LATENTD] + args, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stderr


def test_second_server_on_same_data_dir_is_refused(server, data_dir):
    server.cli("VADD", "k", "VALUES", "1", "1", "a")
    code, err = start_fails(["--port", "0", "--data-dir", data_dir])
    assert code != 0
    assert "in use by another process" in err
    assert server.cli("VCARD", "k") == "1"


def test_port_in_use_is_refused(server, tmp_path):
    code, err = start_fails(["--port", str(server.port), "--data-dir", str(tmp_path / "other")])
    assert code != 0
    assert f"cannot listen on 127.0.0.1:{server.port}" in err
    assert "in use" in err
    # The refused server released its own data directory.
    assert Server(str(tmp_path / "other")).start().kill() is None


def test_directory_that_is_not_a_store_is_refused(tmp_path):
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8")
    code, err = start_fails(["--port", "0", "--data-dir", str(tmp_path)])
    assert code != 0 and "is not a LatentDB data directory" in err
    assert os.listdir(tmp_path) == ["photo.jpg"]


def test_sigterm_and_shutdown_stop_cleanly_and_keep_data(data_dir):
    s = Server(data_dir).start()
    c = Client(s.port)
    assert c.call("VADD", "k", "VALUES", "2", "1", "2", "a") == 1
    s.proc.send_signal(signal.SIGTERM)
    assert s.proc.wait(timeout=30) == 0
    s = Server(data_dir).start()
    assert Client(s.port).call("VEMB", "k", "a") == [b"1", b"2"]
    sock = socket.create_connection(("127.0.0.1", s.port))
    sock.sendall(b"VADD k VALUES 2 3 4 b\r\nSHUTDOWN\r\n")
    assert s.proc.wait(timeout=30) == 0
    s = Server(data_dir).start()
    assert Client(s.port).call("VCARD", "k") == 2
    s.kill()


def test_requests_in_flight_are_answered_during_shutdown(data_dir):
    s = Server(data_dir).start()
    c = Client(s.port)
    c.call("VCREATE", "big", "DIM", "64", "METRIC", "L2")
    rng = random.Random(5)
    c.pipeline([("VADD", "big", "FP32", fp32([rng.random() for _ in range(64)]), f"e{i}") for i in range(3000)])
    queries = [("VSIM", "big", "FP32", fp32([rng.random() for _ in range(64)]), "COUNT", "10") for _ in range(200)]
    c.sock.sendall(b"".join(__import__("resp_client").encode(*q) for q in queries))
    time.sleep(0.05)
    s.proc.send_signal(signal.SIGTERM)
    replies = [c.read_reply() for _ in queries]
    assert all(isinstance(r, list) and len(r) == 10 for r in replies)
    assert s.proc.wait(timeout=30) == 0


@pytest.mark.parametrize("fsync", ["everysec", "always"])
def test_crash_loses_no_acknowledged_write(data_dir, fsync):
    """A writer records every acknowledged id; SIGKILL at a random moment; every one must come back exact."""
    s = Server(data_dir, "--fsync", fsync).start()
    dim = 16
    rng = random.Random()
    acknowledged = {}
    stop = threading.Event()
    errors = []

    def writer(wid):
        try:
            c = Client(s.port)
            i = 0
            while not stop.is_set():
                batch = []
                for _ in range(8):
                    v = [rng.uniform(-1, 1) for _ in range(dim)]
                    batch.append((f"w{wid}-{i}", struct.unpack(f"<{dim}f", fp32(v))))
                    i += 1
                replies = c.pipeline([("VADD", "crash", "FP32", fp32(v), eid) for eid, v in batch])
                for (eid, v), r in zip(batch, replies):
                    if r in (0, 1):
                        acknowledged[eid] = v
        except (ConnectionError, OSError):
            pass  # the server died mid-request: unacknowledged writes may or may not be there
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    time.sleep(rng.uniform(1.0, 2.5))
    s.kill(signal.SIGKILL)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    assert len(acknowledged) > 100

    s = Server(data_dir).start()
    try:
        c = Client(s.port)
        ids = list(acknowledged)
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            replies = c.pipeline([("VEMB", "crash", eid) for eid in chunk])
            for eid, r in zip(chunk, replies):
                assert r is not None, f"acknowledged {eid} lost"
                assert struct.unpack(f"<{dim}f", fp32([float(x) for x in r])) == acknowledged[eid], eid
        assert c.call("VCARD", "crash") >= len(acknowledged)
    finally:
        s.kill()
