#!/usr/bin/env python3
"""Filtered-search anchors for issue 10: exact filtered ground truth, hnswlib's knn_query(filter=...) and FAISS's
HNSW / IVF-flat search with an IDSelectorBitmap, on a TEXMEX dataset from ../shared/bench/make_datasets.py.

    python3 tools/filter_anchors.py --data DIR [--results DIR] [--parts gt,hnswlib,faiss_hnsw,faiss_ivf] DATASET

Every row i of the base set gets the synthetic attribute sel = ((i * 2654435761) mod 2^32) mod 1000 (uniform,
unrelated to the vectors); the filters and their selectivities are
    50%: sel < 500    10%: sel < 100    1%: sel < 10    0.1%: sel == 7
`latentctl bench filter` gives LatentDB's elements the same attribute ({"sel": n}) and the same filters written
in its FILTER language, and reads the ground truth this script writes:
    DIR/DATASET_filter_<label>_gt.ivecs   exact top-10 row ids among the rows that pass (float64 distances,
                                           ties by smaller id)
Anchors are measured one query per call on one thread (hnswlib's filter is a Python callable it calls per
candidate; FAISS's selector runs in C++), plus FAISS with all queries in one call ("batch"), as anchors.py does.
Needs numpy, faiss-cpu, hnswlib (pip, in a venv). Writes RESULTS/DATASET__filter.json.
"""
import argparse
import json
import os
import sys
import time

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import numpy as np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "..", "shared", "bench"))
from make_datasets import read_fvecs  # noqa: E402

FILTERS = [("50%", lambda s: s < 500), ("10%", lambda s: s < 100), ("1%", lambda s: s < 10), ("0.1%", lambda s: s == 7)]
K = 10


def attribute(n):
    i = np.arange(n, dtype=np.uint64)
    return ((i * np.uint64(2654435761)) % np.uint64(2 ** 32)) % np.uint64(1000)


def write_ivecs(path, rows):
    rows = np.asarray(rows, dtype=np.int32)
    with open(path, "wb") as f:
        for r in rows:
            np.array([len(r)], dtype=np.int32).tofile(f)
            r.tofile(f)


def read_ivecs_rows(path):
    raw = np.fromfile(path, dtype=np.int32)
    d = raw[0]
    return raw.reshape(-1, d + 1)[:, 1:]


def exact_filtered(base, queries, allowed):
    ids = np.nonzero(allowed)[0]
    sub = base[ids].astype(np.float64)
    sub_norms = (sub * sub).sum(1)
    out = np.full((len(queries), K), -1, dtype=np.int32)  # -1 pads when fewer than K rows pass
    for start in range(0, len(queries), 100):
        q = queries[start:start + 100].astype(np.float64)
        d = (q * q).sum(1)[:, None] - 2 * q @ sub.T + sub_norms[None, :]
        for r in range(len(q)):
            # ties by smaller id: stable sort on distance over ids already in increasing order
            order = np.argsort(d[r], kind="stable")[:K]
            out[start + r, :len(order)] = ids[order]
    return out


def recall(found, truth):
    """Found / findable: a query whose filter passes fewer than K rows can only find those."""
    hit = possible = 0
    for f, t in zip(found, truth):
        valid = set(int(x) for x in t if x >= 0)
        hit += len(set(int(x) for x in f if x >= 0) & valid)
        possible += len(valid)
    return hit / possible


def timed_queries(search, queries):
    start = time.perf_counter()
    found = [search(q) for q in queries]
    return found, len(queries) / (time.perf_counter() - start)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", default=os.path.join(ROOT, "..", "bench-data"))
    p.add_argument("--results", default=os.path.join(ROOT, "..", "bench-results"))
    p.add_argument("--parts", default="gt,hnswlib,faiss_hnsw,faiss_ivf")
    p.add_argument("--efs", default="16,32,64,128,256,512")
    p.add_argument("--nprobes", default="1,2,4,8,16,32,64")
    p.add_argument("--selectivities", default="50%,10%,1%,0.1%", help="labels of the filters to measure")
    p.add_argument("dataset")
    a = p.parse_args()
    parts = a.parts.split(",")
    measured = [label for label, _ in FILTERS if label in a.selectivities.split(",")]
    base = read_fvecs(os.path.join(a.data, f"{a.dataset}_base.fvecs"))
    queries = read_fvecs(os.path.join(a.data, f"{a.dataset}_query.fvecs"))
    n, dim = base.shape
    sel = attribute(n)
    masks = {label: f(sel) for label, f in FILTERS}
    truth = {}
    for label, _ in FILTERS:
        path = os.path.join(a.data, f"{a.dataset}_filter_{label}_gt.ivecs")
        if "gt" in parts or not os.path.exists(path):
            t0 = time.perf_counter()
            write_ivecs(path, exact_filtered(base, queries, masks[label]))
            print(f"ground truth {label}: {masks[label].sum()} rows pass, {time.perf_counter() - t0:.1f} s", flush=True)
        truth[label] = read_ivecs_rows(path)
    rows = []
    efs = [int(x) for x in a.efs.split(",")]
    if "hnswlib" in parts:
        import hnswlib
        index = hnswlib.Index(space="l2", dim=dim)
        index.init_index(max_elements=n, M=16, ef_construction=200, random_seed=42)
        index.add_items(base, np.arange(n), num_threads=2)
        index.set_num_threads(1)
        for label in measured:
            allowed = masks[label]
            for ef in efs:
                index.set_ef(ef)

                def search(q):
                    try:
                        labels, _ = index.knn_query(q, k=K, filter=lambda i: bool(allowed[i]))
                        return labels[0]
                    except RuntimeError:  # fewer than k found
                        return np.array([-1] * K)
                found, qps = timed_queries(search, queries)
                rows.append({"engine": "hnswlib", "selectivity": label, "ef": ef, "recall": recall(found, truth[label]), "qps": qps})
                print(rows[-1], flush=True)
    if "faiss_hnsw" in parts or "faiss_ivf" in parts:
        import faiss
        faiss.omp_set_num_threads(1)
        indexes = []
        if "faiss_hnsw" in parts:
            h = faiss.IndexHNSWFlat(dim, 16)
            h.hnsw.efConstruction = 200
            faiss.omp_set_num_threads(2)
            h.add(base)
            faiss.omp_set_num_threads(1)
            indexes.append(("faiss_hnsw", h, efs))
        if "faiss_ivf" in parts:
            nlist = int(round(4 * n ** 0.5))
            quantizer = faiss.IndexFlatL2(dim)
            ivf = faiss.IndexIVFFlat(quantizer, dim, nlist)
            faiss.omp_set_num_threads(2)
            ivf.train(base)
            ivf.add(base)
            faiss.omp_set_num_threads(1)
            indexes.append(("faiss_ivf", ivf, [int(x) for x in a.nprobes.split(",")]))
        for name, index, sweep in indexes:
            for label in measured:
                bits = np.packbits(masks[label].astype(np.uint8), bitorder="little")
                selector = faiss.IDSelectorBitmap(n, faiss.swig_ptr(bits))
                for v in sweep:
                    params = (faiss.SearchParametersHNSW(sel=selector, efSearch=v) if name == "faiss_hnsw"
                              else faiss.SearchParametersIVF(sel=selector, nprobe=v))
                    found, qps = timed_queries(lambda q: index.search(q[None, :], K, params=params)[1][0], queries)
                    t0 = time.perf_counter()
                    index.search(queries, K, params=params)
                    batch = len(queries) / (time.perf_counter() - t0)
                    key = "ef" if name == "faiss_hnsw" else "nprobe"
                    rows.append({"engine": name, "selectivity": label, key: v, "recall": recall(found, truth[label]),
                                 "qps": qps, "batch_qps": batch})
                    print(rows[-1], flush=True)
    os.makedirs(a.results, exist_ok=True)
    with open(os.path.join(a.results, f"{a.dataset}__filter.json"), "w") as f:
        json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
