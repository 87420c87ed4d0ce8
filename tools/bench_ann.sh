#!/usr/bin/env bash
# LatentDB beside hnswlib and FAISS on the same files, back to back on this machine (a shared VM drifts
# by tens of percent over minutes, so each pair runs together). Needs ../bench-data from
# ../shared/bench/make_datasets.py and a venv with the anchors' packages (see ../shared/bench/README.md).
# Usage: tools/bench_ann.sh [out-dir] [datasets...]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-../bench-results}; shift || true
DATASETS=${*:-mnist10k synth128}
DATA=${BENCH_DATA:-../bench-data}
PY=${ANCHORS_PYTHON:-../anchors-venv/bin/python}
mkdir -p "$OUT"
swift build -c release --product latentctl >/dev/null
for ds in $DATASETS; do
  echo "=== $ds: hnswlib"; $PY ../shared/bench/anchors.py --data "$DATA" --results "$OUT" "$ds" hnswlib | grep -E "build|'ef'" | cut -c1-200
  echo "=== $ds: LatentDB HNSW"; .build/release/latentctl bench ann --data "$DATA" "$ds" --json "$OUT/${ds}__latentdb_hnsw.json"
  echo "=== $ds: FAISS IVFFlat"; $PY ../shared/bench/anchors.py --data "$DATA" --results "$OUT" "$ds" ivf | grep -E "nprobe" | cut -c1-160
  echo "=== $ds: LatentDB IVF"; .build/release/latentctl bench ann --data "$DATA" "$ds" --index ivf --threads 2 --json "$OUT/${ds}__latentdb_ivf.json"
done
