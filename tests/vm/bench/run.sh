#!/usr/bin/env bash
# The daemon benchmark in the VM (tests/vm/bench/daemon.sh): builds the
# floor program (examples/dm_floor.rs) static, and boots the VM with it.
# Reported, never asserted; prints the BENCH and TABLE lines.
# env: DMFILEMAPD=path   benchmark this binary (e.g. an older build)
#      BENCH_SIZES="300 1000 2500"  group sizes; BENCH_WINDOWS=3  idle 10 s windows
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$repo/target}
(cd "$repo" && cargo build --release --target x86_64-unknown-linux-musl --example dm_floor --quiet)
env_file=$(mktemp)
trap 'rm -f "$env_file"' EXIT
VM_BINS="$target_dir/x86_64-unknown-linux-musl/release/examples/dm_floor" \
SCENARIO_TIMEOUT=${SCENARIO_TIMEOUT:-1500} VM_SHOW=1 \
    bash "$repo/tests/vm/run.sh" "$here/daemon.sh" | grep -E '^(BENCH|TABLE|PASS|FAIL|vm:|[0-9]+ passed)|FAIL:'
