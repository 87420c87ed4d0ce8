"""Serving a user the model never saw: `latentctl load` stores model.json's parameters with the collections
(VINFO shows them) and `VSIM items FOLDIN n item... [WEIGHTS w...]` computes the user's vector with one ALS
half-step against the item vectors. The folded vector is checked against numpy's dense solve."""
import json
import os
import subprocess

import numpy as np

from conftest import LATENTCTL, ROOT
from resp_client import Client, RespError, pairs

RATINGS = os.path.join(ROOT, "docs", "examples", "ml-latest-small", "ratings.csv")


def train(out, *flags):
    p = subprocess.run([LATENTCTL, "train", RATINGS, *flags, "--no-evaluate", "--out", out],
                       capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stdout + p.stderr


def load(model, server, prefix):
    p = subprocess.run([LATENTCTL, "load", "--model-dir", model, "--host", "127.0.0.1", "--port", str(server.port),
                        "--users-collection", prefix + "users", "--items-collection", prefix + "items"],
                       capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stdout + p.stderr


def test_foldin_equals_numpy_and_bad_inputs_are_errors(server, tmp_path):
    ials, bpr = str(tmp_path / "ials"), str(tmp_path / "bpr")
    train(ials, "--method", "ials", "--iterations", "4", "--factors", "16", "--alpha", "2", "--reg", "0.5")
    load(ials, server, "")
    c = Client(server.port)
    info = pairs(c.call("VINFO", "items"))
    assert info["model-method"] == "ials" and float(info["model-regularization"]) == 0.5, info
    assert float(info["model-alpha"]) == 2 and info["model-factors"] == "16", info

    item_ids = open(os.path.join(ials, "items.ids")).read().split()
    items = np.load(os.path.join(ials, "items.npy")).astype(np.float64)
    given = ["1", "50", "260", "296"]
    weights = [5.0, 4.0, 3.5, 1.0]
    rows = [item_ids.index(i) for i in given]
    a = items.T @ items + 0.5 * np.eye(16)
    b = np.zeros(16)
    for r, w in zip(rows, weights):
        conf = 1 + 2 * w
        a += (conf - 1) * np.outer(items[r], items[r])
        b += conf * items[r]
    x = np.linalg.solve(a, b)
    scores = items @ x
    scores[rows] = -np.inf
    expected = [item_ids[i] for i in np.argsort(-scores, kind="stable")[:10]]
    reply = c.call("VSIM", "items", "FOLDIN", "4", *given, "WEIGHTS", *map(str, weights), "COUNT", "10", "WITHSCORES")
    got = [(k, float(v)) for k, v in pairs(reply).items()]
    assert [k for k, _ in got] == expected, (got, expected)
    for k, v in got:
        assert abs(v - scores[item_ids.index(k)]) < 1e-3 * max(1, abs(v)), (k, v)
    # Without WEIGHTS every weight is 1; the given items never come back.
    plain = [k.decode() for k in c.call("VSIM", "items", "FOLDIN", "2", "1", "50", "COUNT", "20")]
    assert len(plain) == 20 and "1" not in plain and "50" not in plain

    def error(*args):
        r = c.call(*args)
        assert isinstance(r, RespError), (args, r)
        return str(r)
    assert "not found" in error("VSIM", "items", "FOLDIN", "2", "1", "no-such-movie")
    assert "FOLDIN needs a count" in error("VSIM", "items", "FOLDIN", "0")
    assert "fewer were given" in error("VSIM", "items", "FOLDIN", "3", "1", "50")
    assert "WEIGHTS needs one weight" in error("VSIM", "items", "FOLDIN", "2", "1", "50", "WEIGHTS", "1")
    assert "finite number" in error("VSIM", "items", "FOLDIN", "1", "1", "WEIGHTS", "-2")
    assert "already leaves" in error("VSIM", "items", "FOLDIN", "1", "1", "EXCLUDE-SEEN")
    c.call("VADD", "plain", "VALUES", "2", "1", "0", "a")
    assert "no model parameters" in error("VSIM", "plain", "FOLDIN", "1", "a")
    assert "MODEL must be a JSON object" in error("VCREATE", "m", "DIM", "2", "MODEL", "{not json")
    # BPR vectors carry an item bias: fold-in is refused with the reason.
    train(bpr, "--method", "bpr", "--iterations", "2", "--factors", "8")
    load(bpr, server, "bpr-")
    assert "bias component" in error("VSIM", "bpr-items", "FOLDIN", "1", "1")
    model = json.load(open(os.path.join(bpr, "model.json")))
    assert pairs(c.call("VINFO", "bpr-items"))["model-data-checksum"] == model["data_checksum_fnv1a64"]
    c.close()
