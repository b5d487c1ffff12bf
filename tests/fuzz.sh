#!/usr/bin/env bash
# Build every cargo-fuzz target and run each for a short smoke
# (FUZZ_SECONDS each, default 30), new inputs kept in a scratch dir.
#
# The deep offline runs (issue 11, not CI): FUZZ_RUNS=10000000 bash
# tests/fuzz.sh [target ...] runs each target that many executions without a
# sanitizer (safe Rust: ASan finds nothing the bounds checks miss, at a
# third of the speed), adds what it finds to fuzz/corpus/<target> and
# minimizes that corpus (cargo fuzz cmin) for committing.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-30}
runs=${FUZZ_RUNS:-}

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
targets=${*:-$(cd fuzz && cargo "${tc[@]}" fuzz list)}
# extent_diff's decoder draws members and extents from 64 ids and 32
# places: 200 records already make every arrangement, longer inputs only
# slow it down.
max_len() { [ "$1" = extent_diff ] && echo -max_len=600; true; }
# Replies captured from the kernel, which tests/protocol.rs reads by name:
# seeds read from where cmin cannot rename them.
seeds() { [ -d "tests/data/$1" ] && echo "tests/data/$1"; true; }
if [ -n "$runs" ]; then
  for t in $targets; do
    mkdir -p "fuzz/corpus/$t"
    log=$work/$t.log
    if ! cargo "${tc[@]}" fuzz run -s none -O "$t" "fuzz/corpus/$t" $(seeds "$t") -- \
        -runs="$runs" -print_final_stats=1 $(max_len "$t") >"$log" 2>&1; then
      echo "fuzz $t: FAILED"; tail -40 "$log"; failed=$((failed + 1)); continue
    fi
    cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -1)
    secs_taken=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | awk '{print $5}')
    cargo "${tc[@]}" fuzz cmin -s none -O "$t" "fuzz/corpus/$t" >"$work/$t.cmin" 2>&1 ||
      { echo "fuzz $t: cmin FAILED"; failed=$((failed + 1)); continue; }
    echo "fuzz $t: ok, $runs executions in ${secs_taken:-?} s, $cov," \
      "corpus $(ls "fuzz/corpus/$t" | wc -l) inputs"
  done
  [ "$failed" -eq 0 ]
  exit
fi
for t in $targets; do
  mkdir -p "$work/$t" "fuzz/corpus/$t"
  # New inputs go to the scratch dir; the committed seeds are only read.
  if cargo "${tc[@]}" fuzz run "$t" "$work/$t" "fuzz/corpus/$t" $(seeds "$t") -- \
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
