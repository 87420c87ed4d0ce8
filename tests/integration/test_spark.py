"""tools/spark_als.py in Spark's local mode on the MovieLens sample; its output loads with latentctl load."""
import json
import os
import subprocess
import sys

import numpy as np

from conftest import LATENTCTL, ROOT, Server
from resp_client import Client

RATINGS = os.path.join(ROOT, "docs", "examples", "ml-latest-small", "ratings.csv")


def test_spark_als_output_loads_and_serves(tmp_path, data_dir):
    out = str(tmp_path / "spark-model")
    p = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "spark_als.py"), RATINGS, "--out", out,
                        "--factors", "8", "--epochs", "5", "--master", "local[2]"], capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-4000:]
    model = json.load(open(os.path.join(out, "model.json")))
    assert model["users"] == 610 and model["items"] == 9724 and model["vector_dimension"] == 8
    assert model["metrics"]["rmse"] < 1.0  # below the global-mean baseline (about 1.04 on this sample)
    users, items = np.load(os.path.join(out, "users.npy")), np.load(os.path.join(out, "items.npy"))
    assert users.shape == (610, 8) and items.shape == (9724, 8)

    p = subprocess.run([LATENTCTL, "load", "--model-dir", out, "--data-dir", data_dir], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    s = Server(data_dir).start()
    try:
        c = Client(s.port)
        assert c.call("VCARD", "items") == 9724
        user_ids = open(os.path.join(out, "users.ids")).read().split()
        item_ids = open(os.path.join(out, "items.ids")).read().split()
        u = user_ids.index("1")
        expected = [item_ids[i] for i in np.argsort(-(items @ users[u]), kind="stable")[:5]]
        got = [x.decode() for x in c.call("VSIM", "items", "ELE", "1", "FROM", "users", "COUNT", "5")]
        assert got == expected
    finally:
        s.kill()
