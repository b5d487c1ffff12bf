#!/usr/bin/env bash
# Build every cargo-fuzz target and run each for a short smoke
# (FUZZ_SECONDS each, default 30). Long runs: FUZZ_SECONDS=600 bash tests/fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-30}

command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
# cargo-fuzz wants nightly for -Zsanitizer; without one, let stable take -Z flags.
tc=()
if rustup run nightly rustc --version >/dev/null 2>&1 ||
   rustup toolchain install nightly --profile minimal >/dev/null 2>&1; then
  tc=(+nightly)
else
  export RUSTC_BOOTSTRAP=1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0
targets=$(cd fuzz && cargo "${tc[@]}" fuzz list)
for t in $targets; do
  mkdir -p "$work/$t" "fuzz/corpus/$t"
  # New inputs go to the scratch dir; the committed seeds are only read.
  if cargo "${tc[@]}" fuzz run "$t" "$work/$t" "fuzz/corpus/$t" -- \
      -max_total_time="$secs" -print_final_stats=1 >"$work/$t.log" 2>&1; then
    execs=$(grep -m1 'stat::number_of_executed_units' "$work/$t.log" | awk '{print $2}')
    cov=$(grep -o 'cov: [0-9]*' "$work/$t.log" | tail -1)
    echo "fuzz $t: ok, ${execs:-?} executions in ${secs}s, ${cov:-cov: ?}"
  else
    echo "fuzz $t: FAILED"
    tail -40 "$work/$t.log"
    failed=$((failed + 1))
  fi
done
[ "$failed" -eq 0 ]
