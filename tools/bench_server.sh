#!/usr/bin/env bash
# Server benchmarks for docs/benchmarks.md: pipelined FP32 VADD throughput and exact VSIM throughput
# with redis-benchmark, against a release latentd on a fresh data directory on this machine.
# Usage: tools/bench_server.sh [vadd-count] [fsync]
set -euo pipefail
cd "$(dirname "$0")/.."
VADD_COUNT=${1:-200000}
FSYNC=${2:-everysec}
swift build -c release >/dev/null
data=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$data"' EXIT
.build/release/latentd --port 0 --data-dir "$data" --fsync "$FSYNC" --log-level warning > "$data.out" &
pid=$!
for _ in $(seq 100); do grep -q ready "$data.out" 2>/dev/null && break; sleep 0.1; done
port=$(sed -n 's/.*:\([0-9]*\)$/\1/p' "$data.out" | head -1)
echo "# $(date -u +%F) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, fsync=$FSYNC"

echo "## VADD, pipelined FP32 (latentctl bench vadd)"
.build/release/latentctl bench vadd --port "$port" --collection load --count "$VADD_COUNT" --dim 128 --metric L2 \
  --connections 4 --pipeline 64
.build/release/latentctl bench vadd --port "$port" --collection load1 --count 50000 --dim 128 --metric L2 \
  --connections 1 --pipeline 64

echo "## exact VSIM on 10,000 x 128 (redis-benchmark -c 50 -P 16)"
query="VSIM bench VALUES 128 __rand_int__"
for i in $(seq 127); do query="$query 0.$((i % 10))"; done
summary() { tr '\r' '\n' | grep 'requests per second' | tail -1 | sed 's/.*COUNT 10: //'; }
for metric in L2 IP COSINE; do
  c="bench_$metric"
  .build/release/latentctl bench vadd --port "$port" --collection "$c" --count 10000 --dim 128 --metric "$metric" >/dev/null
  echo "$metric: $(redis-benchmark -p "$port" -c 50 -P 16 -n 50000 -r 1000 -q ${query/bench /$c } COUNT 10 | summary)"
done
echo "## PING baseline (redis-benchmark -c 50 -P 16 -t ping_mbulk)"
redis-benchmark -p "$port" -c 50 -P 16 -n 1000000 -q -t ping_mbulk | tr '\r' '\n' | grep 'requests per second' | tail -1
echo "## memory"
redis-cli -p "$port" INFO memory | tr -d '\r' | grep used_memory
redis-cli -p "$port" VINFO bench_L2 | paste - - | grep -E "size|memory"
