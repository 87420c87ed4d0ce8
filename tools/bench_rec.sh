#!/usr/bin/env bash
# Recommendation QPS through latentd with and without the result cache, users drawn from Zipf(1.1);
# and load rates of latentctl load offline and online. Usage: tools/bench_rec.sh [fvecs-dir-for-1M-load]
set -euo pipefail
cd "$(dirname "$0")/.."
FVECS=${1:-../bench-data}
swift build -c release >/dev/null
work=$(mktemp -d /tmp/latentdb-rec-XXXX)
trap 'redis-cli -p 7441 SHUTDOWN >/dev/null 2>&1 || true; sleep 1; rm -rf "$work"' EXIT
SAMPLE=docs/examples/ml-latest-small
.build/release/latentctl train $SAMPLE/ratings.csv --biased --factors 32 --epochs 30 --lr 0.01 --reg 0.05 --out "$work/model" >/dev/null
for cache in 64 0; do
  rm -rf "$work/data"
  .build/release/latentd --port 7441 --data-dir "$work/data" --query-cache-mb $cache --log-level warning &
  until redis-cli -p 7441 PING >/dev/null 2>&1; do sleep 0.1; done
  .build/release/latentctl load --model-dir "$work/model" --host 127.0.0.1 --port 7441 --seen $SAMPLE/ratings.csv >/dev/null
  echo "--query-cache-mb $cache:"
  .build/release/latentctl bench rec --port 7441 --user-ids "$work/model/users.ids" --requests 100000 --exclude-seen
  redis-cli -p 7441 SHUTDOWN >/dev/null 2>&1 || true; sleep 1
done
if [ -f "$FVECS/synth128-1m_base.fvecs" ]; then
  python3 - "$FVECS/synth128-1m_base.fvecs" "$work" <<'PY'
import sys, numpy as np
raw = np.fromfile(sys.argv[1], dtype="<i4")
d = raw[0]; m = raw.reshape(-1, d + 1)[:, 1:].view("<f4")
np.save(sys.argv[2] + "/items1m.npy", np.ascontiguousarray(m))
open(sys.argv[2] + "/items1m.ids", "w").write("\n".join(str(i) for i in range(len(m))) + "\n")
PY
  t0=$(date +%s.%N)
  .build/release/latentctl load --items "$work/items1m.npy" --item-ids "$work/items1m.ids" --data-dir "$work/offline" --metric L2 | tail -1
  t1=$(date +%s.%N)
  echo "offline load of 1,000,000 x 128: $(echo "$t1 - $t0" | bc) s including reading the .npy"
  .build/release/latentd --port 7441 --data-dir "$work/online" --log-level warning &
  until redis-cli -p 7441 PING >/dev/null 2>&1; do sleep 0.1; done
  t0=$(date +%s.%N)
  .build/release/latentctl load --items "$work/items1m.npy" --item-ids "$work/items1m.ids" --host 127.0.0.1 --port 7441 --metric L2 | tail -1
  t1=$(date +%s.%N)
  echo "online load of 1,000,000 x 128: $(echo "$t1 - $t0" | bc) s including reading the .npy"
fi
