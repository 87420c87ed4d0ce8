#!/usr/bin/env python3
"""Rating prediction on ml-latest-small, 5 folds: LatentDB's svdpp and sgd --biased beside scikit-surprise's
SVDpp and SVD with their default settings, on the same seeded folds; RMSE and training seconds per fold.

    /tmp/rank-venv/bin/pip install scikit-surprise
    /tmp/rank-venv/bin/python tools/bench_svdpp.py --latentctl .build/release/latentctl
"""
import argparse
import os
import random
import re
import subprocess
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RATINGS = os.path.join(ROOT, "..", "shared", "data", "ml-latest-small", "ratings.csv")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latentctl", default=os.path.join(ROOT, ".build", "release", "latentctl"))
    parser.add_argument("--ratings", default=RATINGS)
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    from surprise import SVD, Dataset, Reader, SVDpp, accuracy
    rows = [line.split(",")[:3] for line in open(args.ratings).read().split("\n")[1:] if line]
    random.Random(42).shuffle(rows)
    results = {}
    with tempfile.TemporaryDirectory() as work:
        for f in range(args.folds):
            train = [r for n, r in enumerate(rows) if n % args.folds != f]
            test = [r for n, r in enumerate(rows) if n % args.folds == f]
            paths = []
            for name, part in (("train", train), ("test", test)):
                path = os.path.join(work, f"{name}{f}.csv")
                with open(path, "w") as out:
                    out.write("user,item,rating\n")
                    out.writelines(f"{u},{i},{r}\n" for u, i, r in part)
                paths.append(path)
            for name, flags in (("LatentDB svdpp", ["--method", "svdpp"]), ("LatentDB sgd --biased", ["--method", "sgd", "--biased"])):
                out = subprocess.run([args.latentctl, "train", paths[0], *flags, "--test-file", paths[1]],
                                     capture_output=True, text=True, check=True).stdout
                seconds = float(re.search(r"train ([0-9.]+) s", out).group(1))
                rmse = float(re.search(r"RMSE ([0-9.]+)", out).group(1))
                results.setdefault(name, []).append((rmse, seconds))
            reader = Reader(line_format="user item rating", sep=",", skip_lines=1, rating_scale=(0.5, 5.0))
            trainset = Dataset.load_from_file(paths[0], reader).build_full_trainset()
            testset = [(u, i, float(r)) for u, i, r in test]
            for name, algo in (("surprise SVDpp", SVDpp(random_state=42)), ("surprise SVD", SVD(random_state=42))):
                start = time.perf_counter()
                algo.fit(trainset)
                seconds = time.perf_counter() - start
                rmse = accuracy.rmse(algo.test(testset), verbose=False)
                results.setdefault(name, []).append((rmse, seconds))
            print(f"fold {f + 1}: " + ", ".join(f"{k} {v[-1][0]:.4f}" for k, v in results.items()), flush=True)
    print(f"ml-latest-small, {args.folds} seeded folds, defaults of each")
    print("| model | RMSE | training s per fold |")
    print("|---|---|---|")
    for name, runs in results.items():
        print(f"| {name} | {np.mean([r[0] for r in runs]):.4f} | {np.mean([r[1] for r in runs]):.2f} |")


if __name__ == "__main__":
    main()
