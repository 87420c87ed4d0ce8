#!/usr/bin/env python3
"""Matrix factorisation on MovieLens, LatentDB beside scikit-surprise on the same 5 folds, same machine, same run,
plus the textbook numpy SGD loop's time per epoch. Needs: numpy, pandas, scikit-surprise (in a venv).

    ../anchors-venv/bin/python tools/bench_mf.py [ratings.csv] [--folds 5]
"""
import argparse
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LATENTCTL = os.path.join(ROOT, ".build", "release", "latentctl")


def read(path):
    rows = []
    with open(path) as f:
        next(f)
        for line in f:
            u, i, r = line.strip().split(",")[:3]
            rows.append((u, i, float(r)))
    return rows


def write(path, rows):
    with open(path, "w") as f:
        for u, i, r in rows:
            f.write(f"{u},{i},{r}\n")


def latentdb(train_csv, test_csv, *args):
    out = subprocess.run([LATENTCTL, "train", train_csv, "--test-file", test_csv, *args], capture_output=True, text=True, check=True).stdout
    m = re.search(r"RMSE ([0-9.]+)\s+MAE ([0-9.]+)\s+train ([0-9.]+) s", out)
    return float(m.group(1)), float(m.group(2)), float(m.group(3))


def surprise_fold(algo, train_rows, test_rows):
    from surprise import Dataset, Reader, accuracy
    import pandas as pd
    df = pd.DataFrame(train_rows, columns=["u", "i", "r"])
    trainset = Dataset.load_from_df(df, Reader(rating_scale=(0.5, 5.0))).build_full_trainset()
    start = time.perf_counter()
    algo.fit(trainset)
    seconds = time.perf_counter() - start
    predictions = algo.test(test_rows)
    return accuracy.rmse(predictions, verbose=False), accuracy.mae(predictions, verbose=False), seconds


def numpy_epoch(rows, k=100, lr=0.005, reg=0.02, seed=0):
    """The textbook loop: one Python for over the ratings with the biased SVD updates."""
    users = {u: n for n, u in enumerate(sorted({u for u, _, _ in rows}))}
    items = {i: n for n, i in enumerate(sorted({i for _, i, _ in rows}))}
    rng = np.random.default_rng(seed)
    p = rng.normal(0, 0.1, (len(users), k))
    q = rng.normal(0, 0.1, (len(items), k))
    bu = np.zeros(len(users))
    bi = np.zeros(len(items))
    mu = np.mean([r for _, _, r in rows])
    data = [(users[u], items[i], r) for u, i, r in rows]
    start = time.perf_counter()
    for u, i, r in data:
        e = r - (mu + bu[u] + bi[i] + p[u] @ q[i])
        bu[u] += lr * (e - reg * bu[u])
        bi[i] += lr * (e - reg * bi[i])
        pu = p[u].copy()
        p[u] += lr * (e * q[i] - reg * p[u])
        q[i] += lr * (e * pu - reg * q[i])
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ratings", nargs="?", default=os.path.join(ROOT, "docs", "examples", "ml-latest-small", "ratings.csv"))
    ap.add_argument("--folds", type=int, default=5)
    args = ap.parse_args()
    from surprise import SVD, SVDpp, BaselineOnly
    rows = read(args.ratings)
    random.Random(42).shuffle(rows)
    folds = [([r for n, r in enumerate(rows) if n % args.folds != f], [r for n, r in enumerate(rows) if n % args.folds == f])
             for f in range(args.folds)]
    tmp = tempfile.mkdtemp()
    contenders = {
        # Surprise SVD's defaults: 100 factors, 20 epochs, lr 0.005, reg 0.02, biased.
        "LatentDB sgd --biased (k=100, 20 epochs, as Surprise SVD)": lambda tr, te: latentdb(tr, te, "--biased", "--factors", "100", "--epochs", "20"),
        "LatentDB sgd --biased (k=32, 30 epochs, lr 0.01, reg 0.05)": lambda tr, te: latentdb(tr, te, "--biased", "--factors", "32", "--epochs", "30", "--lr", "0.01", "--reg", "0.05"),
        "LatentDB als (k=10, 15 epochs, reg 0.1)": lambda tr, te: latentdb(tr, te, "--method", "als", "--factors", "10", "--epochs", "15", "--reg", "0.1"),
    }
    results = {name: [] for name in list(contenders) + ["Surprise SVD", "Surprise SVDpp", "Surprise BaselineOnly"]}
    for f, (train, test) in enumerate(folds):
        tr, te = os.path.join(tmp, f"train{f}.csv"), os.path.join(tmp, f"test{f}.csv")
        write(tr, train)
        write(te, test)
        for name, run in contenders.items():
            results[name].append(run(tr, te))
        results["Surprise SVD"].append(surprise_fold(SVD(random_state=0), train, test))
        results["Surprise BaselineOnly"].append(surprise_fold(BaselineOnly(verbose=False), train, test))
        if (f < 2 or os.environ.get("SVDPP_ALL_FOLDS")) and not os.environ.get("SKIP_SVDPP"):
            results["Surprise SVDpp"].append(surprise_fold(SVDpp(random_state=0), train, test))
        print(f"fold {f + 1} done", file=sys.stderr)
    print(f"{len(rows)} ratings, {args.folds} folds (same folds for every algorithm)\n")
    print("| algorithm | RMSE | MAE | fit time per fold |")
    print("|---|---|---|---|")
    for name, rs in results.items():
        if not rs:
            continue
        rm = [r[0] for r in rs]
        ma = [r[1] for r in rs]
        t = [r[2] for r in rs]
        sd = lambda v: statistics.pstdev(v) if len(v) > 1 else 0.0
        print(f"| {name} | {statistics.mean(rm):.4f} +/- {sd(rm):.4f} | {statistics.mean(ma):.4f} +/- {sd(ma):.4f} | {statistics.mean(t):.3f} s"
              + (f" ({len(rs)} folds)" if len(rs) != args.folds else "") + " |")
    t = numpy_epoch(folds[0][0])
    print(f"\ntextbook numpy loop (one Python for over the ratings, biased updates, k=100): {t:.2f} s per epoch on fold 1's "
          f"{len(folds[0][0])} training ratings")


if __name__ == "__main__":
    main()
