"""Ranking evaluation a recommender engineer can trust: `latentctl split`, `train --method ials` on the train
part, `latentctl eval` on the test part, and the same figures recomputed here with numpy exactly as the
`implicit` package's ranking_metrics_at_k computes them (precision = hits / sum of min(k, relevant),
NDCG and MAP averaged over users), plus recall, hit rate and coverage. Ties rank the lower item first."""
import os
import re
import subprocess

import numpy as np

from conftest import LATENTCTL, ROOT

RATINGS = os.path.join(ROOT, "docs", "examples", "ml-latest-small", "ratings.csv")


def run(*args):
    p = subprocess.run([LATENTCTL, *args], capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def read_csv(path):
    rows = [line.split(",") for line in open(path).read().split("\n")[1:] if line]
    return [(u, i, float(r)) for u, i, r in rows]


def reference_metrics(model_dir, train, test, k, relevant_min):
    user_ids = open(os.path.join(model_dir, "users.ids")).read().split()
    item_ids = open(os.path.join(model_dir, "items.ids")).read().split()
    users = np.load(os.path.join(model_dir, "users.npy")).astype(np.float64)
    items = np.load(os.path.join(model_dir, "items.npy")).astype(np.float64)
    urow = {u: n for n, u in enumerate(user_ids)}
    irow = {i: n for n, i in enumerate(item_ids)}
    seen = {}
    for u, i, _ in train:
        if u in urow and i in irow:
            seen.setdefault(urow[u], set()).add(irow[i])
    likes = {}
    for u, i, r in test:
        if u in urow and i in irow and r >= relevant_min:
            likes.setdefault(urow[u], set()).add(irow[i])
    cg = 1.0 / np.log2(np.arange(2, k + 2))
    relevant = pr_div = 0.0
    ndcg = mean_ap = recall = hit_users = 0.0
    covered = set()
    for u in sorted(likes):
        scores = (items @ users[u]).astype(np.float32)  # float32 scores, as the server ranks them
        scores[list(seen.get(u, ()))] = -np.inf
        top = [i for i in np.argsort(-scores, kind="stable")[:k] if np.isfinite(scores[i])]
        covered.update(top)
        liked = likes[u]
        pr_div += min(k, len(liked))
        idcg = cg[: min(k, len(liked))].sum()
        hits = ap = dcg = 0.0
        for rank, i in enumerate(top):
            if i in liked:
                hits += 1
                ap += hits / (rank + 1)
                dcg += cg[rank]
        relevant += hits
        ndcg += dcg / idcg
        mean_ap += ap / min(k, len(liked))
        recall += hits / len(liked)
        hit_users += hits > 0
    n = len(likes)
    return {"precision": relevant / pr_div, "recall": recall / n, "NDCG": ndcg / n, "MAP": mean_ap / n,
            "hit rate": hit_users / n, "coverage": len(covered) / len(item_ids)}


def parse(line, k):
    found = {}
    for name in ["precision", "recall", "NDCG", "MAP"]:
        found[name] = float(re.search(rf"{name}@{k} ([0-9.]+)", line).group(1))
    for name in ["hit rate", "coverage"]:
        found[name] = float(re.search(rf"{name} ([0-9.]+)", line).group(1))
    return found


def test_eval_equals_the_numpy_reference_and_beats_most_popular(tmp_path):
    split_dir, model_dir = str(tmp_path / "split"), str(tmp_path / "model")
    out = run("split", RATINGS, "--split", "user", "--holdout", "10", "--out", split_dir)
    assert "leave 10 out per user" in out, out
    train_csv, test_csv = os.path.join(split_dir, "train.csv"), os.path.join(split_dir, "test.csv")
    run("train", train_csv, "--method", "ials", "--iterations", "6", "--folds", "2", "--out", model_dir)
    k = 10
    report = run("eval", model_dir, test_csv, "--train", train_csv, "--k", str(k))
    lines = {line.split()[0]: line for line in report.splitlines() if line.startswith("  ")}
    got = parse(lines["model"], k)
    expected = reference_metrics(model_dir, read_csv(train_csv), read_csv(test_csv), k, 4.0)
    for name, value in expected.items():
        assert abs(got[name] - value) < 6e-5, (name, got[name], value, report)
    popular = parse(lines["most"], k)
    assert got["precision"] > 1.2 * popular["precision"], report
    assert parse(lines["random"], k)["precision"] < popular["precision"]


def test_eval_and_split_reject_bad_input(tmp_path):
    def fails(*args):
        p = subprocess.run([LATENTCTL, *args], capture_output=True, text=True, timeout=120)
        assert p.returncode != 0, p.stdout
        return p.stderr
    assert "users.npy" in fails("eval", str(tmp_path / "nothing"), RATINGS, "--train", RATINGS)
    assert "--k" in fails("eval", str(tmp_path), RATINGS, "--train", RATINGS, "--k", "0")
    assert "--folds" in fails("split", RATINGS, "--folds", "3", "--out", str(tmp_path / "s"))
    plain = tmp_path / "plain.csv"
    plain.write_text("user,item,rating\na,x,4\nb,y,5\n")
    assert "timestamps" in fails("split", str(plain), "--split", "time", "--out", str(tmp_path / "t"))
    assert "--alpha" in fails("train", RATINGS, "--method", "ials", "--alpha", "-1")
