#!/usr/bin/env python3
"""Top-N ranking on ml-latest-small, 5 folds: LatentDB's ials, bpr and sgd --biased beside the `implicit`
package's ALS and BPR and most-popular, on the same folds, scored by the same evaluator (`latentctl eval`,
which follows implicit's ranking_metrics_at_k; implicit's own function is run too, as a cross-check).

    python3 -m venv /tmp/rank-venv && /tmp/rank-venv/bin/pip install numpy scipy implicit threadpoolctl
    /tmp/rank-venv/bin/python tools/bench_rank.py --latentctl .build/release/latentctl

Training times are single-threaded for both (`--threads 1`, implicit's num_threads=1), measured around the
training call only. Confidence is the same for both ALS: LatentDB's 1 + alpha * r with alpha 1 is passed to
implicit as data 1 + r (implicit uses the data itself as the confidence).
"""
import argparse
import os
import random
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RATINGS = os.path.join(ROOT, "..", "shared", "data", "ml-latest-small", "ratings.csv")


def folds(path, k, seed):
    rows = [line.split(",")[:3] for line in open(path).read().split("\n")[1:] if line]
    random.Random(seed).shuffle(rows)
    for f in range(k):
        yield [r for n, r in enumerate(rows) if n % k != f], [r for n, r in enumerate(rows) if n % k == f]


def write_csv(rows, path):
    with open(path, "w") as out:
        out.write("user,item,rating\n")
        out.writelines(f"{u},{i},{r}\n" for u, i, r in rows)


def evaluate(latentctl, model_dir, train_csv, test_csv):
    out = subprocess.run([latentctl, "eval", model_dir, test_csv, "--train", train_csv], capture_output=True,
                         text=True, check=True).stdout
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ")}

    def figures(line):
        return {name: float(re.search(rf"{name}@10 ([0-9.]+)", line).group(1)) for name in ["precision", "NDCG"]}
    return figures(lines["model"]), figures(lines["most"])


def write_model(directory, users, items, user_ids, item_ids):
    os.makedirs(directory, exist_ok=True)
    np.save(os.path.join(directory, "users.npy"), np.ascontiguousarray(users, dtype=np.float32))
    np.save(os.path.join(directory, "items.npy"), np.ascontiguousarray(items, dtype=np.float32))
    open(os.path.join(directory, "users.ids"), "w").write("\n".join(user_ids) + "\n")
    open(os.path.join(directory, "items.ids"), "w").write("\n".join(item_ids) + "\n")


def implicit_models(train, test, directory, factors, iterations, reg, seed):
    """Trains implicit's ALS and BPR on `train`; returns {name: (model_dir, seconds, implicit's own p@10)}."""
    import implicit
    from implicit.evaluation import ranking_metrics_at_k
    from scipy.sparse import csr_matrix
    from threadpoolctl import threadpool_limits
    user_ids = sorted({r[0] for r in train})
    item_ids = sorted({r[1] for r in train})
    urow = {u: n for n, u in enumerate(user_ids)}
    irow = {i: n for n, i in enumerate(item_ids)}
    rows = np.array([urow[r[0]] for r in train])
    cols = np.array([irow[r[1]] for r in train])
    values = np.array([float(r[2]) for r in train], dtype=np.float32)
    shape = (len(user_ids), len(item_ids))
    confidence = csr_matrix((1 + values, (rows, cols)), shape=shape)
    binary = csr_matrix((np.ones_like(values), (rows, cols)), shape=shape)
    test_rows = [(urow[u], irow[i]) for u, i, r in test if u in urow and i in irow and float(r) >= 4]
    test_matrix = csr_matrix((np.ones(len(test_rows)), ([a for a, _ in test_rows], [b for _, b in test_rows])), shape=shape)
    out = {}
    with threadpool_limits(1):
        for name, model, data in [
            ("implicit ALS", implicit.cpu.als.AlternatingLeastSquares(factors=factors, regularization=reg, alpha=1.0,
                                                                       iterations=iterations, num_threads=1,
                                                                       random_state=seed), confidence),
            ("implicit BPR", implicit.cpu.bpr.BayesianPersonalizedRanking(factors=64, learning_rate=0.05, regularization=0.0,
                                                                           iterations=200, num_threads=1,
                                                                           random_state=seed), binary),
        ]:
            start = time.perf_counter()
            model.fit(data, show_progress=False)
            seconds = time.perf_counter() - start
            own = ranking_metrics_at_k(model, binary, test_matrix, K=10, show_progress=False)["precision"]
            path = os.path.join(directory, name.replace(" ", "-"))
            write_model(path, model.user_factors, model.item_factors, user_ids, item_ids)
            out[name] = (path, seconds, own)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latentctl", default=os.path.join(ROOT, ".build", "release", "latentctl"))
    parser.add_argument("--ratings", default=RATINGS)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--factors", type=int, default=32)
    parser.add_argument("--iterations", type=int, default=15)
    parser.add_argument("--reg", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=42, help="initialisation seed of every model (the folds stay fixed)")
    args = parser.parse_args()
    ours = {
        "LatentDB ials": ["--method", "ials", "--factors", str(args.factors), "--iterations", str(args.iterations),
                          "--reg", str(args.reg), "--alpha", "1", "--seed", str(args.seed)],
        "LatentDB bpr": ["--method", "bpr", "--seed", str(args.seed)],
        "LatentDB sgd --biased": ["--method", "sgd", "--biased", "--seed", str(args.seed)],
    }
    results = {}
    with tempfile.TemporaryDirectory() as work:
        for f, (train, test) in enumerate(folds(args.ratings, args.folds, 42)):
            train_csv, test_csv = os.path.join(work, f"train{f}.csv"), os.path.join(work, f"test{f}.csv")
            write_csv(train, train_csv)
            write_csv(test, test_csv)
            for name, flags in ours.items():
                model = os.path.join(work, f"{f}-{name.split()[1]}")
                out = subprocess.run([args.latentctl, "train", train_csv, *flags, "--threads", "1", "--no-evaluate",
                                      "--out", model], capture_output=True, text=True, check=True).stdout
                seconds = float(re.search(r"trained in ([0-9.]+) s", out).group(1))
                figures, popular = evaluate(args.latentctl, model, train_csv, test_csv)
                results.setdefault(name, []).append((figures, seconds, None))
                results.setdefault("most popular", []).append((popular, 0.0, None)) if name == "LatentDB ials" else None
            try:
                for name, (model, seconds, own) in implicit_models(train, test, work, args.factors, args.iterations,
                                                                   args.reg, args.seed).items():
                    figures, _ = evaluate(args.latentctl, model, train_csv, test_csv)
                    results.setdefault(name, []).append((figures, seconds, own))
            except ImportError as e:
                print(f"implicit not installed ({e}): its rows are left out", file=sys.stderr)
            print(f"fold {f + 1} done", file=sys.stderr)
    print(f"ml-latest-small, {args.folds} folds, seed {args.seed}; factors {args.factors}, {args.iterations} iterations, reg {args.reg} "
          f"(ALS); relevant = held-out rating >= 4; 1 thread")
    print("| model | precision@10 | NDCG@10 | training s per fold | implicit's own precision@10 |")
    print("|---|---|---|---|---|")
    for name, runs in results.items():
        p = np.mean([r[0]["precision"] for r in runs])
        n = np.mean([r[0]["NDCG"] for r in runs])
        s = np.mean([r[1] for r in runs])
        own = [r[2] for r in runs if r[2] is not None]
        print(f"| {name} | {p:.4f} | {n:.4f} | {s:.2f} | {np.mean(own):.4f} |" if own else f"| {name} | {p:.4f} | {n:.4f} | {s:.2f} | |")


if __name__ == "__main__":
    main()
