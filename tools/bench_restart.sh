#!/usr/bin/env bash
# Restart time of a collection with a built HNSW index: load a TEXMEX base set into a fresh latentd,
# wait for the index, stop the server (SIGTERM), start it again and time until VINFO reports the index
# ready with nothing pending. Usage: tools/bench_restart.sh [dataset] [data-dir-of-fvecs]
set -euo pipefail
cd "$(dirname "$0")/.."
DATASET=${1:-synth128-1m}
FVECS=${2:-../bench-data}
swift build -c release >/dev/null
data=${KEEP_DIR:-$(mktemp -d /tmp/latentd-restart-XXXX)}
fresh=1; [ -e "$data/CURRENT" ] && fresh=0
port=7411
start_server() {
  .build/release/latentd --port $port --data-dir "$data" --log-level info 2>>"$data.log" >/dev/null &
  pid=$!
}
wait_port() { until redis-cli -p $port PING >/dev/null 2>&1; do sleep 0.05; done; }
start_server; wait_port
if [ $fresh = 1 ]; then
  .build/release/latentctl bench ann-server --port $port --data "$FVECS" "$DATASET" --collection c --efs 32 64
fi
echo "data dir: $(du -sh "$data" | cut -f1)"
kill -TERM $pid; wait $pid
t0=$(date +%s.%N)
start_server; wait_port
t1=$(date +%s.%N)
until redis-cli -p $port VINFO c | paste - - | grep -q "pending	0" && redis-cli -p $port VINFO c | paste - - | grep -q "index-state	ready"; do sleep 0.05; done
t2=$(date +%s.%N)
echo "restart: accepting connections after $(echo "$t1 - $t0" | bc) s, index ready after $(echo "$t2 - $t0" | bc) s"
redis-cli -p $port VINFO c | paste - - | tr '\n' ' '; echo
.build/release/latentctl bench ann-server --port $port --data "$FVECS" "$DATASET" --collection c --reuse true --efs 32 64
kill -TERM $pid; wait $pid
grep -E "snapshot|index built" "$data.log" | cut -c1-220
[ -n "${KEEP_DIR:-}" ] || rm -rf "$data"
rm -f "$data.log"
