#!/usr/bin/env bash
# make demo: train on the bundled MovieLens sample, load it into a running latentd, and ask it for
# "top movies for user 1" and "movies like Toy Story (1995)".
set -euo pipefail
cd "$(dirname "$0")/.."
SAMPLE=docs/examples/ml-latest-small
PORT=${PORT:-7399}
work=$(mktemp -d /tmp/latentdb-demo-XXXX)
trap 'redis-cli -p $PORT SHUTDOWN >/dev/null 2>&1 || true; wait 2>/dev/null; rm -rf "$work"' EXIT

echo "== training (implicit ALS, 32 factors, 15 iterations) on $SAMPLE/ratings.csv; precision@10 on a held-out 20%"
.build/release/latentctl train $SAMPLE/ratings.csv --method ials --out "$work/model" \
  | grep -A1 -E "^model|^baselines" | grep -E "precision" | sed -E 's/^ +//; s/  recall.*//; s/^precision/model        precision/'

.build/release/latentd --port "$PORT" --data-dir "$work/data" --log-level warning &
until redis-cli -p "$PORT" PING >/dev/null 2>&1; do sleep 0.1; done
echo "== loading into latentd on port $PORT (online, pipelined FP32 VADDs)"
.build/release/latentctl load --model-dir "$work/model" --host 127.0.0.1 --port "$PORT" \
  --attrs $SAMPLE/movies.csv --seen $SAMPLE/ratings.csv --item-similarity-collection items-like | grep done

titles() {
  python3 -c '
import json, sys
rows = [json.loads(l)["title"] for l in sys.stdin.read().splitlines() if l.startswith("{")]
for n, title in enumerate(rows, 1):
    print("  %2d. %s" % (n, title))'
}
echo "== VSIM items ELE 1 FROM users COUNT 10 EXCLUDE-SEEN WITHATTRIBS   (top movies for user 1, unseen)"
redis-cli -p "$PORT" VSIM items ELE 1 FROM users COUNT 10 EXCLUDE-SEEN WITHATTRIBS | titles
toy=$(grep -m1 ',Toy Story (1995),' $SAMPLE/movies.csv | cut -d, -f1)
echo "== VSIM items-like ELE $toy COUNT 11 WITHATTRIBS   (movies most like Toy Story (1995))"
redis-cli -p "$PORT" VSIM items-like ELE "$toy" COUNT 11 WITHATTRIBS | titles | tail -n +2 | awk '{$1=""; print "  " NR "." $0}'
