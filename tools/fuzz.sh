#!/usr/bin/env bash
# Fuzzes the request path (RESP decoder -> command parser -> executor) with libFuzzer and AddressSanitizer.
# Usage: tools/fuzz.sh SECONDS [extra libFuzzer flags]. Builds into .build-fuzz; new corpus entries go to
# .build-fuzz/corpus (the committed seeds in tests/fuzz/corpus are read, never written); a crash input is
# written to .build-fuzz/crash-* and the script fails. `make fuzz` runs 20 minutes, `make test` 60 s.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RUN=${1:-60}; shift || true
swift build -c release --build-path .build-fuzz --product latent-fuzz \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -DLATENT_FUZZING >/dev/null
mkdir -p .build-fuzz/corpus .build-fuzz/artifacts
log=.build-fuzz/fuzz.log
set +e
# -rss_limit_mb: a leak or runaway allocation fails the run; -timeout: one input taking 10 s is a hang.
LSAN_OPTIONS="suppressions=$PWD/tools/lsan-suppressions.txt:print_suppressions=0" \
  .build-fuzz/release/latent-fuzz .build-fuzz/corpus tests/fuzz/corpus -max_total_time="$SECONDS_TO_RUN" \
  -rss_limit_mb=2048 -timeout=10 -max_len=4096 -print_final_stats=1 \
  -artifact_prefix=.build-fuzz/artifacts/ "$@" >"$log" 2>&1
rc=$?
set -e
grep -E "^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss_mb|Done [0-9]+ runs)" "$log" | tail -3
if [ $rc -ne 0 ]; then
  echo "fuzzing found a failure (exit $rc); last lines of $log:"; tail -40 "$log"
  ls .build-fuzz/artifacts/
  exit 1
fi
