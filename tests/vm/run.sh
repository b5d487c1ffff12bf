#!/usr/bin/env bash
# Runs the VM scenarios against the real kernel: builds the static binary and
# the initramfs, boots Debian 12's (or 13's) kernel under qemu (software
# emulation) and runs each scenario in the guest. Prints "PASS name" /
# "FAIL name: why" per scenario and ends with "N passed, N failed"; exits
# non-zero on any failure or if the VM did not finish.
#
# usage: tests/vm/run.sh [SCENARIO|FILE.sh ...]   (default: every scenario)
# env:   VM_RELEASE=12|13 Debian 12's kernel and dmsetup (the default), or
#                         Debian 13's (logs then in tests/vm/work/deb13)
#        VM_ARCH=amd64|arm64  the guest's architecture: amd64 (the default) or
#                         arm64, Debian's arm64 kernel and user space under
#                         qemu-system-aarch64 -M virt with the
#                         aarch64-unknown-linux-musl binary (logs then in
#                         tests/vm/work/arm64, .../arm64/deb13)
#        VM_FILEMAP=dmstats|hand|map  how scenarios start the daemon (see
#                         start_filemap in guest/lib.sh; default: dmstats on
#                         12, map on 13)
#        DMFILEMAPD=path  use this binary instead of building one
#        VM_DEBUG=1       run the daemon at verbose 3, show its log on failure
#        VM_SKIP="a b"    leave these scenarios out of the default set
#        VM_SHOW=1        print the whole console log (also kept in tests/vm/work)
#        VM_BINS="a b"    more static programs for the guest's /usr/local/bin (benchmarks)
#        BENCH_*          exported to the scenarios (tests/vm/bench)
#        SCENARIO_TIMEOUT seconds before a scenario counts as hung (default 60;
#                         a scenario's "# vm-timeout: N" line overrides it)
#        VM_TIMEOUT_SCALE every scenario's limit times this (default 1 on
#                         amd64, 3 on arm64, whose emulation on an x86 host
#                         is slower: interleaved took 4.4 times amd64's)
#        VM_TIME_SCALE=N  multiply every time limit by N (default: the host's
#                         load per CPU at boot, rounded up, 1 to 4)
#        VM_TCG_THREAD=single|multi  qemu's TCG threads on amd64 (default
#                         single; multi is for showing why, see README.md)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=$here/cache
release=${VM_RELEASE:-12}
arch=${VM_ARCH:-amd64}
case $arch in
    amd64) work=$here/work target=x86_64-unknown-linux-musl ;;
    arm64) work=$here/work/arm64 target=aarch64-unknown-linux-musl ;;
    *) echo "run.sh: VM_ARCH=$arch: only amd64 or arm64" >&2; exit 2 ;;
esac
case $release in
    12) ;;
    13) work=$work/deb13 ;;
    *) echo "run.sh: VM_RELEASE=$release: only 12 or 13" >&2; exit 2 ;;
esac
mkdir -p "$cache" "$work"

scenarios=()
if [ $# -eq 0 ]; then
    for f in "$here"/scenarios/*.sh; do
        case " ${VM_SKIP:-} " in *" $(basename "$f" .sh) "*) echo "vm: skipping $(basename "$f" .sh)"; continue ;; esac
        # A scenario that needs one release's guest says so: "# vm-release: 13".
        only=$(sed -n 's/^# vm-release: *//p' "$f")
        case " ${only:-$release} " in *" $release "*) ;; *) echo "vm: skipping $(basename "$f" .sh) (Debian $only only)"; continue ;; esac
        scenarios+=("$f")
    done
else
    for a in "$@"; do
        case $a in
            */*|*.sh) scenarios+=("$(realpath "$a")") ;;
            *) scenarios+=("$here/scenarios/$a.sh") ;;
        esac
    done
fi
for f in "${scenarios[@]}"; do
    [ -f "$f" ] || { echo "run.sh: no scenario $f" >&2; exit 2; }
done

# The daemon: one static binary, first on the guest's PATH.
if [ -z "${DMFILEMAPD:-}" ]; then
    target_dir=${CARGO_TARGET_DIR:-$repo/target}
    (cd "$repo" && cargo build --release --target "$target" --quiet)
    DMFILEMAPD=$target_dir/$target/release/dmfilemapd
fi
[ -x "$DMFILEMAPD" ] || { echo "run.sh: no binary at $DMFILEMAPD" >&2; exit 2; }

t_build=$(date +%s.%N)
kernel=$(bash "$here/initramfs.sh" "$cache" "$work/base.cpio.gz" "$release" "$arch")

# The per-run archive, appended to the cached base (the kernel unpacks both).
over=$(mktemp -d)
trap 'rm -rf "$over"' EXIT
mkdir -p "$over/t/scenarios" "$over/usr/local/bin"
cp "$here/guest/boot.sh" "$here/guest/lib.sh" "$over/t/"
: > "$over/t/list"
for f in "${scenarios[@]}"; do
    name=$(basename "$f" .sh)
    cp "$f" "$over/t/scenarios/$name.sh"
    echo "$name" >> "$over/t/list"
done
if [ "${VM_DEBUG:-0}" = 1 ]; then
    # The daemon as dmstats starts it, but at verbose 3 with its log kept in
    # /tmp/dmfilemapd.log (shown after each scenario that fails).
    mkdir -p "$over/usr/local/libexec"
    cp "$DMFILEMAPD" "$over/usr/local/libexec/dmfilemapd"
    cat > "$over/usr/local/bin/dmfilemapd" <<'WRAP'
#!/bin/sh
read -r parent < /proc/$PPID/comm
if [ "$1" = map ]; then
    # `map` follows the group it makes: its daemon keeps stderr when
    # verbose, so it writes the log; its own output goes through a file,
    # as the detached copy must not hold the caller's $(...) pipe.
    shift
    /usr/local/libexec/dmfilemapd map --verbose 3 "$@" > /tmp/map.out 2>> /tmp/dmfilemapd.log
    rc=$?
    cat /tmp/map.out
    exit $rc
fi
# start_filemap (lib.sh) starts it as dmstats would where dmstats cannot.
[ "$parent" = dmstats ] || [ -n "${VM_AS_DMSTATS:-}" ] || exec /usr/local/libexec/dmfilemapd "$@"
exec /usr/local/libexec/dmfilemapd "$1" "$2" "$3" "$4" "${5:-0}" 3 >> /tmp/dmfilemapd.log 2>&1
WRAP
    chmod +x "$over/usr/local/bin/dmfilemapd"
else
    cp "$DMFILEMAPD" "$over/usr/local/bin/dmfilemapd"
fi
for b in ${VM_BINS:-}; do
    cp "$b" "$over/usr/local/bin/"
done
echo "SCENARIO_TIMEOUT=${SCENARIO_TIMEOUT:-60}" > "$over/t/env"
scale=${VM_TIMEOUT_SCALE:-$([ "$arch" = arm64 ] && echo 3 || echo 1)}
echo "TIMEOUT_SCALE=$scale" >> "$over/t/env"
# Where the guest reports (boot.sh): the second 16550 on amd64; on arm64,
# whose virt machine has one UART (the console), a virtio console.
echo "REPORT_TTY=$([ "$arch" = arm64 ] && echo /dev/hvc0 || echo /dev/ttyS1)" >> "$over/t/env"
# Benchmark settings (BENCH_*) reach the guest's scenarios as they are.
for v in $(compgen -v BENCH_ || true); do
    printf "export %s='%s'\n" "$v" "${!v}" >> "$over/t/env"
done
# How start_filemap (guest/lib.sh) has the daemon follow a new group: Debian
# 12's dmstats starts it; Debian 13's cannot, so `dmfilemapd map` makes the
# group and follows it, as on a system whose dmstats starts no daemon.
filemap=${VM_FILEMAP:-$([ "$release" = 12 ] && echo dmstats || echo map)}
printf 'VM_RELEASE=%s\nVM_FILEMAP=%s\nVM_ARCH=%s\n' "$release" "$filemap" "$arch" >> "$over/t/env"
# The time limits are hang guards, not speed tests (speed is benchmarked):
# on a host whose load exceeds its CPUs (other VMs, builds) the emulated
# guest slows down as much, so they are scaled by the load at boot,
# rounded up, 1 to 4 (VM_TIME_SCALE sets it). Seen without it at a load of
# 22 on 2 cores: fd_leak, map_basic (60 s) and kill_sweep (300 s) cut
# while progressing, and a suite longer than the 2400 s guard.
if [ -z "${VM_TIME_SCALE:-}" ]; then
    VM_TIME_SCALE=$(awk -v c="$(nproc)" '{ s = int(($1 + c - 1) / c); print s < 1 ? 1 : (s > 4 ? 4 : s) }' /proc/loadavg)
fi
echo "TIME_SCALE=$VM_TIME_SCALE" >> "$over/t/env"
(cd "$over" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -1) > "$work/over.cpio.gz"
cat "$work/base.cpio.gz" "$work/over.cpio.gz" > "$work/initrd.img"

n=${#scenarios[@]}
guard=120
for f in "${scenarios[@]}"; do
    limit=$(sed -n 's/^# vm-timeout: *//p' "$f")
    guard=$((guard + ${limit:-${SCENARIO_TIMEOUT:-60}} * scale * VM_TIME_SCALE))
done
[ $guard -le $((2400 * scale * VM_TIME_SCALE)) ] || guard=$((2400 * scale * VM_TIME_SCALE))
# no_timer_check: at boot the kernel checks that the IO-APIC timer ticks
# within a few of its own loops; an emulated CPU starved by a loaded host
# misses it and the kernel panics ("IO-APIC + timer doesn't work!", seen
# with Debian 13's kernel at a load of 17 on two cores).
echo "vm: booting $(basename "$kernel") with $n scenario(s), guard ${guard}s, time limits x$VM_TIME_SCALE (load $(cut -d' ' -f1 /proc/loadavg) on $(nproc) CPUs)"
t_boot=$(date +%s.%N)
case $arch in
amd64)
    # One host thread for both vCPUs: with one thread per vCPU (qemu 7.2's
    # default) a vCPU can run a stale int3 of the kernel's live code
    # patching and the guest dies (tests/vm/README.md, "One TCG thread").
    qemu=(qemu-system-x86_64 -machine q35 -accel "tcg,thread=${VM_TCG_THREAD:-single}" -cpu max
        -serial "file:$work/console.log" -serial "file:$work/results.log")
    console=ttyS0
    ;;
arm64)
    # pauth-impdef: QEMU's own pointer-authentication hash, much cheaper to
    # emulate than the architected one (QARMA) and invisible to the guest.
    qemu=(qemu-system-aarch64 -machine virt,accel=tcg -cpu max,pauth-impdef=on
        -serial "file:$work/console.log"
        -chardev "file,id=results,path=$work/results.log"
        -device virtio-serial-device -device virtconsole,chardev=results)
    console=ttyAMA0
    ;;
esac
set +e
rm -f "$work/console.log" "$work/results.log"
timeout -k 10 "$guard" "${qemu[@]}" -smp 2 -m 4G \
    -nodefaults -no-user-config -display none -no-reboot \
    -kernel "$kernel" -initrd "$work/initrd.img" \
    -append "console=$console rdinit=/init panic=-1 loglevel=4 mitigations=off no_timer_check" \
    > "$work/qemu.log" 2>&1
qrc=$?
set -e
t_end=$(date +%s.%N)

if [ "${VM_SHOW:-0}" = 1 ]; then
    tr -d '\r' < "$work/console.log"
elif [ "${VM_DEMO:-0}" = 1 ]; then
    # The scenario's own output, without the kernel's messages.
    tr -d '\r' < "$work/console.log" | sed -n '/^=== /,$p' | grep -v '^\[ *[0-9.]*\] '
fi

results=$(tr -d '\r' < "$work/results.log" 2>/dev/null || true)
passed=0
failed=0
done_seen=0
while IFS= read -r line; do
    case $line in
        "PASS "*) passed=$((passed + 1)); echo "$line" ;;
        "FAIL "*) failed=$((failed + 1)); echo "$line" ;;
        DONE) done_seen=1 ;;
        *) echo "  $line" ;;
    esac
done <<< "$results"

# A scenario that never reported (the VM died or hung) counts as failed.
for f in "${scenarios[@]}"; do
    name=$(basename "$f" .sh)
    if ! grep -qE "^(PASS|FAIL) $name( |:)" <<< "$results"; then
        echo "FAIL $name: no result (the VM stopped before it finished)"
        failed=$((failed + 1))
    fi
done
if [ $done_seen -eq 0 ]; then
    echo "vm: the guest did not finish (qemu exit $qrc); last console lines:"
    tr -d '\r' < "$work/console.log" | tail -n 30 | sed 's/^/  /'
    [ $failed -gt 0 ] || failed=1
fi
awk -v a="$t_build" -v b="$t_boot" -v c="$t_end" \
    -v where="${work#"$repo/"}/console.log" \
    'BEGIN { printf "vm: initramfs %.1f s, VM %.1f s (console log: %s)\n", b - a, c - b, where }'
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
