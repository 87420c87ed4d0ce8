#!/usr/bin/env python3
"""Plots filtered search, recall@10 against single-thread QPS, one panel per selectivity, from the JSON rows of
`latentctl bench filter --json` (LatentDB HNSW and IVF, planner on) and tools/filter_anchors.py (hnswlib, FAISS
HNSW and IVF with an IDSelectorBitmap).

    python3 tools/plot_filter.py --results ../bench-results --out docs/img/filter_DATASET.png DATASET

Needs matplotlib. The planner's exact scan shows as a single point (it has no knob)."""
import argparse
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SELECTIVITIES = ["50%", "10%", "1%", "0.1%"]


def load(path):
    with open(path) as f:
        return json.load(f)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--results", default="../bench-results")
    p.add_argument("--out", required=True)
    p.add_argument("--selectivities", default=",".join(SELECTIVITIES), help="panels, e.g. 10%%,1%%")
    p.add_argument("--anchors", nargs="*", help="tools/filter_anchors.py result files (default: RESULTS/DATASET__filter.json)")
    p.add_argument("dataset")
    a = p.parse_args()
    panels = a.selectivities.split(",")
    series = {}
    for kind in ("hnsw", "ivf"):
        path = os.path.join(a.results, f"{a.dataset}__latentdb_filter_{kind}.json")
        if os.path.exists(path):
            for r in load(path):
                if r["plan"] == "auto":
                    series.setdefault((f"LatentDB {kind.upper()}", r["selectivity"]), []).append((r["recall"], r["qps"]))
    names = {"hnswlib": "hnswlib filter", "faiss_hnsw": "FAISS HNSW + bitmap", "faiss_ivf": "FAISS IVF + bitmap"}
    for path in a.anchors or [os.path.join(a.results, f"{a.dataset}__filter.json")]:
        for r in load(path):
            series.setdefault((names[r["engine"]], r["selectivity"]), []).append((r["recall"], r["qps"]))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 4.2), squeeze=False)
    axes = axes[0]
    for ax, sel in zip(axes, panels):
        for (name, s), points in sorted(series.items()):
            if s != sel:
                continue
            points.sort()
            ax.plot([x for x, _ in points], [y for _, y in points], marker="o", label=name)
        ax.axvline(0.95, color="grey", linestyle=":", linewidth=1)
        ax.set_yscale("log")
        ax.set_title(f"{a.dataset}, {sel} of elements match")
        ax.set_xlabel("recall@10")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("queries per second, one thread (log)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(a.out, dpi=90)
    print("wrote", a.out)


if __name__ == "__main__":
    main()
