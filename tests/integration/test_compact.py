"""COMPACT on a running server and `latentctl compact` on a stopped one's directory (issue #13)."""
import subprocess

import numpy as np

from conftest import LATENTCTL, Server
from resp_client import Client, pairs


def test_compact_online_and_offline(data_dir):
    s = Server(data_dir).start()
    try:
        c = Client(s.port)
        data = np.random.default_rng(5).standard_normal((3000, 64)).astype("<f4")
        assert c.call("VCREATE", "gone", "DIM", "64", "INDEX", "FLAT") == "OK"
        assert c.call("VCREATE", "kept", "DIM", "64", "INDEX", "FLAT") == "OK"
        c.pipeline([("VADD", "gone", "FP32", v.tobytes(), f"g{i}") for i, v in enumerate(data)])
        c.pipeline([("VADD", "kept", "FP32", v.tobytes(), f"k{i}") for i, v in enumerate(data[:500])])
        c.pipeline([("VREM", "gone", f"g{i}") for i in range(len(data))])
        first = pairs(c.call("COMPACT"))
        assert first["column-families"] == "6" and float(first["seconds"]) >= 0, first
        one = pairs(c.call("COMPACT", "kept"))
        assert one["column-families"] == "5", one
        assert int(one["sst-bytes-after"]) < 3000 * 256, "the removed vectors are gone from the files"
        assert c.call("VCARD", "kept") == 500
        err = c.call("COMPACT", "nope")
        assert str(err) == "ERR no such collection 'nope'", err
        err = c.call("COMPACT", "a", "b")
        assert "wrong number of arguments" in str(err), err
        # latentd holds the directory: the offline tool says so instead of touching it.
        busy = subprocess.run([LATENTCTL, "compact", "--data-dir", data_dir], capture_output=True, text=True, timeout=120)
        assert busy.returncode != 0 and "lock" in busy.stderr.lower(), busy.stderr
    finally:
        s.stop()
    out = subprocess.run([LATENTCTL, "compact", "--data-dir", data_dir, "--collection", "kept"], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert [l.split(" ", 1)[0] for l in lines[:5]] == ["[1/5]", "[2/5]", "[3/5]", "[4/5]", "[5/5]"], out.stdout
    assert lines[-1].startswith("compacted collection 'kept': "), out.stdout
    missing = subprocess.run([LATENTCTL, "compact", "--data-dir", data_dir, "--collection", "nope"], capture_output=True,
                             text=True, timeout=120)
    assert missing.returncode != 0 and "no such collection 'nope'" in missing.stderr, missing.stderr
    s = Server(data_dir).start()
    try:
        assert Client(s.port).call("VCARD", "kept") == 500
    finally:
        s.stop()
