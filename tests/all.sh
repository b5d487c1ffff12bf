#!/usr/bin/env bash
# The one test command (what .ci/run calls): sets the machine up, then runs the
# unit and fake-kernel tests, the fuzz smoke run (if present) and the VM
# scenarios against the real kernel, Debian 12's and Debian 13's. Exits
# non-zero if any part fails.
set -uo pipefail
cd "$(dirname "$0")/.."

failed=()
step() {
    local name=$1
    shift
    echo "=== $name"
    local t0=$SECONDS
    if "$@"; then
        echo "=== $name: ok ($((SECONDS - t0)) s)"
    else
        echo "=== $name: FAILED ($((SECONDS - t0)) s)"
        failed+=("$name")
    fi
}

step setup bash tests/setup.sh || true
if [ "${#failed[@]}" -gt 0 ]; then
    echo "all: set-up failed, not running the tests"
    exit 1
fi
step "cargo test" cargo test --all-targets
[ -f tests/fuzz.sh ] && step fuzz bash tests/fuzz.sh
step "vm (Debian 12)" bash tests/vm/run.sh
step "vm (Debian 13)" env VM_RELEASE=13 bash tests/vm/run.sh

if [ "${#failed[@]}" -gt 0 ]; then
    echo "all: FAILED: ${failed[*]}"
    exit 1
fi
echo "all: ok"
