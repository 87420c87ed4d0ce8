"""From ratings to served vectors: latentctl train on the MovieLens sample, then latentctl load, offline and
online, with the load's atomicity under a kill."""
import json
import os
import signal
import subprocess
import time

import numpy as np

from conftest import LATENTCTL, ROOT, Server
from resp_client import Client, pairs

RATINGS = os.path.join(ROOT, "docs", "examples", "ml-latest-small", "ratings.csv")


def train(out, *extra):
    p = subprocess.run([LATENTCTL, "train", RATINGS, "--epochs", "3", "--out", out, *extra],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def test_train_reports_metrics_and_writes_a_loadable_model(tmp_path):
    out = str(tmp_path / "model")
    report = train(out, "--biased")
    for text in ["100836 ratings, 610 users, 9724 items", "test RMSE", "precision@10", "NDCG@10", "baselines", "most popular"]:
        assert text in report, report
    model = json.load(open(os.path.join(out, "model.json")))
    assert model["method"] == "sgd" and model["biased"] is True and model["vector_dimension"] == 11
    users = np.load(os.path.join(out, "users.npy"))
    items = np.load(os.path.join(out, "items.npy"))
    assert users.shape == (610, 11) and items.shape == (9724, 11) and users.dtype == np.float32
    assert np.all(users[:, -1] == 1)  # biases folded in: user [p_u, 1]
    assert len(open(os.path.join(out, "items.ids")).read().split()) == 9724


def test_malformed_ratings_file_is_reported_with_its_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("userId,movieId,rating,timestamp\n1,1,4.0,1\n1,2,x,2\n")
    p = subprocess.run([LATENTCTL, "train", str(bad), "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert p.returncode == 1 and "bad.csv:3: rating 'x' is not a number" in p.stderr
    assert not (tmp_path / "o").exists()


def test_load_offline_then_online_and_a_killed_load_leaves_the_old_data(tmp_path, data_dir):
    model = str(tmp_path / "model")
    train(model)
    p = subprocess.run([LATENTCTL, "load", "--model-dir", model, "--data-dir", data_dir], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    s = Server(data_dir).start()
    try:
        c = Client(s.port)
        assert c.call("VCARD", "users") == 610 and c.call("VCARD", "items") == 9724
        top = c.call("VSIM", "items", "ELE", "1", "FROM", "users", "COUNT", "10")
        users = np.load(os.path.join(model, "users.npy"))
        items = np.load(os.path.join(model, "items.npy"))
        ids = open(os.path.join(model, "items.ids")).read().split()
        expected = [ids[i] for i in np.argsort(-(items @ users[0]), kind="stable")[:10]]
        assert [x.decode() for x in top] == expected

        # A second model loaded online, killed midway: the old collection keeps serving, unchanged.
        other = tmp_path / "other.csv"
        rng = np.random.default_rng(1)
        with open(other, "w") as f:
            for i in range(60000):
                f.write(f"x{i}," + ",".join(f"{v:.4f}" for v in rng.standard_normal(10)) + "\n")
        load = subprocess.Popen([LATENTCTL, "load", "--items", str(other), "--host", "127.0.0.1", "--port", str(s.port)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.time() + 60
        while time.time() < deadline:
            staging = [n for n in c.call("VLIST") if n.startswith(b"items.loading")]
            if staging and c.call("VCARD", staging[0]) > 1000:
                break
            time.sleep(0.05)
        load.send_signal(signal.SIGKILL)
        load.wait()
        assert c.call("VCARD", "items") == 9724
        assert c.call("VSIM", "items", "ELE", "1", "FROM", "users", "COUNT", "10") == top

        # Completed, it replaces the collection whole.
        p = subprocess.run([LATENTCTL, "load", "--items", str(other), "--host", "127.0.0.1", "--port", str(s.port)],
                           capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr
        assert c.call("VCARD", "items") == 60000
        assert c.call("VISMEMBER", "items", "x59999") == 1 and c.call("VISMEMBER", "items", "1") == 0
    finally:
        s.kill()


def test_load_rejects_bad_input_before_writing(tmp_path, data_dir):
    bad = tmp_path / "dup.csv"
    bad.write_text("a,1,2\nb,3,4\na,5,6\n")
    p = subprocess.run([LATENTCTL, "load", "--items", str(bad), "--data-dir", data_dir], capture_output=True, text=True)
    assert p.returncode == 1 and "id 'a' appears more than once" in p.stderr
    nan = tmp_path / "nan.csv"
    nan.write_text("a,1,2\nb,nan,4\n")
    p = subprocess.run([LATENTCTL, "load", "--items", str(nan), "--data-dir", data_dir], capture_output=True, text=True)
    assert p.returncode == 1 and "row 1 ('b') has a NaN" in p.stderr
    ids = tmp_path / "ids"
    ids.write_text("a\nb\n")
    np.save(tmp_path / "m.npy", np.zeros((3, 2), dtype=np.float32))
    p = subprocess.run([LATENTCTL, "load", "--items", str(tmp_path / "m.npy"), "--item-ids", str(ids), "--data-dir", data_dir],
                       capture_output=True, text=True)
    assert p.returncode == 1 and "has 3 rows but" in p.stderr
    np.save(tmp_path / "i.npy", np.zeros((3, 2), dtype=np.int64))
    p = subprocess.run([LATENTCTL, "load", "--items", str(tmp_path / "i.npy"), "--item-ids", str(ids), "--data-dir", data_dir],
                       capture_output=True, text=True)
    assert p.returncode == 1 and "dtype" in p.stderr


def test_exclude_seen_attributes_and_item_similarity(tmp_path, data_dir):
    model = str(tmp_path / "model")
    train(model, "--biased")
    movies = os.path.join(ROOT, "docs", "examples", "ml-latest-small", "movies.csv")
    p = subprocess.run([LATENTCTL, "load", "--model-dir", model, "--data-dir", data_dir, "--attrs", movies,
                        "--seen", RATINGS, "--item-similarity-collection", "items-like"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    s = Server(data_dir).start()
    try:
        c = Client(s.port)
        rated = set()
        for line in open(RATINGS).read().splitlines()[1:]:
            u, m = line.split(",")[:2]
            if u == "1":
                rated.add(m)
        plain = [x.decode() for x in c.call("VSIM", "items", "ELE", "1", "FROM", "users", "COUNT", "300")]
        assert set(plain) & rated, "the test needs a user whose plain top items include rated ones"
        fresh = c.call("VSIM", "items", "ELE", "1", "FROM", "users", "COUNT", "10", "EXCLUDE-SEEN", "WITHATTRIBS")
        ids = [x.decode() for x in fresh[0::2]]
        assert len(ids) == 10 and not set(ids) & rated
        assert ids == [m for m in plain if m not in rated][:10]
        assert json.loads(fresh[1])["title"]
        assert json.loads(c.call("VGETATTR", "items", "1"))["title"] == "Toy Story (1995)"
        like = c.call("VSIM", "items-like", "ELE", "1", "COUNT", "5")
        assert like[0] == b"1" and len(like) == 5
        assert pairs(c.call("VINFO", "items-like"))["metric"] == "COSINE"
        assert str(c.call("VSIM", "items", "VALUES", "11", *(["1"] * 11), "EXCLUDE-SEEN")).startswith("ERR EXCLUDE-SEEN needs ELE")
    finally:
        s.kill()
