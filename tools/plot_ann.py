#!/usr/bin/env python3
"""Recall@10 vs single-thread QPS: LatentDB (latentctl bench ann --json) beside hnswlib and FAISS IVFFlat
(../shared/bench/anchors.py) from one results directory. Usage: plot_ann.py RESULTS_DIR OUT.png"""
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(path):
    with open(path) as f:
        return json.load(f)


def main(results, out):
    datasets = ["synth128", "mnist10k"]
    fig, axes = plt.subplots(1, len(datasets), figsize=(12, 4.8))
    for ax, ds in zip(axes, datasets):
        series = []
        p = os.path.join(results, f"{ds}__hnswlib.json")
        if os.path.exists(p):
            sweep = load(p)["results"]["sweep"]
            series.append(("hnswlib HNSW (batch of 1000, 1 thread)", [r["recall@10"] for r in sweep],
                           [r.get("batch1000_1thread_qps", r["qps"]) for r in sweep], "C0", "--"))
        p = os.path.join(results, f"{ds}__ivf.json")
        if os.path.exists(p):
            sweep = load(p)["results"][0]["sweep"]
            series.append(("FAISS IVFFlat", [r["recall@10"] for r in sweep], [r["qps"] for r in sweep], "C1", "--"))
        for kind, color in (("hnsw", "C0"), ("ivf", "C1")):
            p = os.path.join(results, f"{ds}__latentdb_{kind}.json")
            if os.path.exists(p):
                sweep = load(p)["sweep"]
                series.append((f"LatentDB {kind.upper()}", [r["recall"] for r in sweep], [r["qps"] for r in sweep], color, "-"))
        for label, recall, qps, color, style in series:
            ax.plot(recall, qps, style, marker="o", color=color, label=label)
        ax.axvline(0.95, color="grey", lw=0.8, ls=":")
        ax.set_yscale("log")
        ax.set_xlim(0.8, 1.001)
        ax.set_xlabel("recall@10")
        ax.set_ylabel("queries per second (1 thread)")
        ax.set_title(ds)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Recall vs QPS, same machine, same session (2 cores, Xeon VM)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
