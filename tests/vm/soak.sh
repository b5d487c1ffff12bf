#!/usr/bin/env bash
# The soak: runs the VM suites (Debian 12's, then Debian 13's) ROUNDS times in
# a row on one snapshot of the tree, and reports every failure with its
# console log kept aside. Offline (not in CI): about 10 minutes a round alone.
#
# usage: tests/vm/soak.sh [ROUNDS]        (default 10)
# env:   SOAK_RELEASES="12 13"  the releases, in the order run each round
#        SOAK_DIR=dir           where it all goes (default tests/vm/work/soak)
#        SOAK_UNTIL="18:45"     start no suite after this time (anything
#                               `date -d` reads); the table counts what ran
#        DMFILEMAPD=path        soak this binary instead of a fresh build
#        VM_*                   passed to run.sh as they are
#
# What it keeps in SOAK_DIR:
#   tree/          the snapshot of tests/vm the suites run from (the work tree
#                  may change under a long soak; this does not)
#   dmfilemapd     the binary every suite runs
#   rN-dR.out      run.sh's output of round N, release R, with the machine's
#                  load before and after
#   rN-dR.console.log   the whole console of a failed suite (passing suites'
#                  consoles are overwritten by the next run)
#   summary.txt    the table so far, rewritten after every suite
#
# The machine may be shared: every failure line carries the load average
# and the scenario's time, and a scenario killed at its time limit is marked
# "(time limit: look at the load)", so a load-induced failure can be told
# from a wrong result.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
rounds=${1:-10}
releases=${SOAK_RELEASES:-12 13}
dir=${SOAK_DIR:-$here/work/soak}
until_s=""
[ -z "${SOAK_UNTIL:-}" ] || until_s=$(date -d "$SOAK_UNTIL" +%s) || exit 2

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
commit=$(git -C "$repo" rev-parse --short HEAD 2> /dev/null || echo unknown)
dirty=$(git -C "$repo" status --porcelain -- src tests/vm Cargo.toml 2> /dev/null | grep -c . || true)

# The snapshot: the scenarios, guest scripts and run.sh as they are now, the
# download cache shared (it is large and keyed by version).
rm -rf "$dir/tree"
mkdir -p "$dir/tree/tests"
tar -C "$repo" --exclude=tests/vm/work --exclude=tests/vm/cache -cf - tests/vm | tar -C "$dir/tree" -xf -
ln -s "$(readlink -f "$here/cache")" "$dir/tree/tests/vm/cache"

if [ -z "${DMFILEMAPD:-}" ]; then
    (cd "$repo" && cargo build --release --target x86_64-unknown-linux-musl --quiet) || exit 1
    DMFILEMAPD=${CARGO_TARGET_DIR:-$repo/target}/x86_64-unknown-linux-musl/release/dmfilemapd
fi
cp "$DMFILEMAPD" "$dir/dmfilemapd" || exit 1

load() { cut -d' ' -f1-3 /proc/loadavg; }
echo "soak: $rounds round(s) of Debian ${releases// /, } at $commit${dirty:+ ($dirty changed file(s) not committed)}, in $dir"

# results.tsv: round, release, suite status, passed, failed, seconds, load
# before, load after. failures.tsv: round, release, scenario, why, console.
: > "$dir/results.tsv"
: > "$dir/failures.tsv"

summary() {
    {
        echo "soak at $commit${dirty:+ (+$dirty uncommitted)}, $(date -u '+%F %T UTC')"
        echo
        echo "| release | suites run | green | scenarios run | scenario failures | wall time per suite (min-max) |"
        echo "|---|---|---|---|---|---|"
        for rel in $releases; do
            awk -F'\t' -v r="$rel" '
                $2 == r { n++; if ($3 == "ok") g++; s += $4 + $5; f += $5
                          if (min == "" || $6 < min) min = $6; if ($6 > max) max = $6 }
                END { printf "| %s | %d | %d | %d | %d | %s-%s s |\n", r, n, g, s, f, min + 0, max + 0 }' "$dir/results.tsv"
        done
        if [ -s "$dir/failures.tsv" ]; then
            echo
            echo "Failures by scenario:"
            echo
            echo "| release | scenario | count | rounds |"
            echo "|---|---|---|---|"
            awk -F'\t' '{ k = $2 "\t" $3; c[k]++; r[k] = r[k] (r[k] == "" ? "" : ",") $1 }
                END { for (k in c) { split(k, p, "\t"); printf "| %s | %s | %d | %s |\n", p[1], p[2], c[k], r[k] } }' \
                "$dir/failures.tsv" | sort
            echo
            echo "Each failure:"
            echo
            awk -F'\t' '{ printf "- round %s, Debian %s, %s: %s\n  console: %s\n", $1, $2, $3, $4, $5 }' "$dir/failures.tsv"
        fi
    } > "$dir/summary.txt"
}

for round in $(seq 1 "$rounds"); do
    for rel in $releases; do
        if [ -n "$until_s" ] && [ "$(date +%s)" -ge "$until_s" ]; then
            echo "soak: past $SOAK_UNTIL, stopping before round $round, Debian $rel"
            summary
            cat "$dir/summary.txt"
            exit 0
        fi
        out=$dir/r$round-d$rel.out
        l0=$(load)
        t0=$SECONDS
        echo "soak: round $round, Debian $rel, load $l0, $(date -u +%T)"
        env DMFILEMAPD="$dir/dmfilemapd" VM_RELEASE="$rel" bash "$dir/tree/tests/vm/run.sh" > "$out" 2>&1
        rc=$?
        took=$((SECONDS - t0))
        l1=$(load)
        last=$(grep -v '^ *$' "$out" | tail -n 1)
        printf 'load before: %s\nload after: %s\n' "$l0" "$l1" >> "$out"
        passed=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$out" | tail -1)
        failed=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$out" | tail -1)
        status=ok
        [ $rc -eq 0 ] || status=failed
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$rel" "$status" "${passed:-0}" "${failed:-1}" \
            "$took" "$l0" "$l1" >> "$dir/results.tsv"
        echo "soak: round $round, Debian $rel: ${passed:-?} passed, ${failed:-?} failed in $took s (load after $l1)"
        if [ $rc -ne 0 ]; then
            work=$dir/tree/tests/vm/work
            [ "$rel" = 12 ] || work=$work/deb13
            console=$dir/r$round-d$rel.console.log
            cp "$work/console.log" "$console" 2> /dev/null || console="(none: $work/console.log missing)"
            grep '^FAIL ' "$out" | while IFS= read -r line; do
                name=$(sed 's/^FAIL \([^:]*\):.*/\1/' <<< "$line")
                why=${line#"FAIL $name: "}
                case $why in *"killed after"*"(hang)"*) why="$why (time limit: look at the load)" ;; esac
                printf '%s\t%s\t%s\t%s\t%s\n' "$round" "$rel" "$name" "$why [load $l0 -> $l1]" "$console" >> "$dir/failures.tsv"
                echo "soak:   $line"
            done
            [ -n "$failed" ] && [ "$failed" != 0 ] || printf '%s\t%s\t%s\t%s\t%s\n' "$round" "$rel" "(suite)" \
                "run.sh exit $rc, no scenario failed: $last" "$console" >> "$dir/failures.tsv"
        fi
        summary
    done
done
summary
cat "$dir/summary.txt"
