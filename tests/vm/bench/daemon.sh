# Benchmark on the real kernel, reported not asserted:
#   tests/vm/run.sh tests/vm/bench/daemon.sh
# Maps a fragmented file of N extents with the real dmstats, then measures the
# daemon's memory, how long it takes to follow a change of many extents, and
# that an idle daemon makes no FIEMAP call (its CPU time stays flat).

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
now_ms() { awk '{printf "%d\n", $1 * 1000}' /proc/uptime; }
kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }

for n in 256 2048; do
    f=/mnt/xfs/bench$n
    mib=$((n * 8192 / 1048576))
    write_mib "$f" "$mib"
    fragment "$f" "$mib"
    start_filemap "$f" > /dev/null
    pid=$(one_daemon) || exit 1
    expect_group xfs "bench$n" "$f"
    before=$(cpu_ticks "$pid")
    sleep 5
    idle=$(( $(cpu_ticks "$pid") - before ))
    echo "BENCH n=$n extents: daemon VmRSS $(kib "$pid" VmRSS) KiB, VmHWM $(kib "$pid" VmHWM) KiB, CPU ticks in 5 s idle: $idle"

    # Fill every hole: all N extents merge into one, N-1 regions go.
    t0=$(now_ms)
    write_mib "$f" "$mib"
    expect_group xfs "bench$n" "$f" > /dev/null
    t1=$(now_ms)
    echo "BENCH n=$n extents: write + follow to $(file_extents "$f" | wc -l) extent(s): $((t1 - t0)) ms (includes the write and the 0.5 s rate limit)"
    echo "BENCH n=$n extents: after the update VmHWM $(kib "$pid" VmHWM) KiB"
    kill "$pid"
    wait_exit "$pid" 3
    dmstats delete --allregions xfs > /dev/null 2>&1
    rm -f "$f"
done
