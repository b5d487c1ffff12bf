# Benchmark on the real kernel, reported, never asserted. Run it with
#   bash tests/vm/bench/run.sh          (builds dm_floor, boots the VM)
# For each group size: a file of N extents mapped by the real dmstats; the
# kernel's floor beside it (examples/dm_floor.rs: N creates, one list, N
# set_aux, N one-area prints, N deletes, nothing else); and the daemon's
# - idle CPU in 10 s windows, against the floor cost of one full list;
# - CPU and messages to follow a fill of every hole, then a punch of every
#   other 4 KiB block, against the floor cost of the same messages (the
#   daemon is stopped, SIGSTOP, while the file changes and measured from
#   SIGCONT until it logs its update: the writer's time is not the daemon's,
#   and nothing else sends dm messages meanwhile: a list by another process
#   holds dm-stats' mutex, on which the daemon's messages would spin);
# - peak RSS, against the floor program's.
# CPU is read from /proc/PID/schedstat (ns on CPU) and /proc/PID/stat
# (ticks of 10 ms). Lines start with BENCH; one TABLE line per size.

SIZES=${BENCH_SIZES:-300 1000 2500}
WINDOWS=${BENCH_WINDOWS:-3}
SETTLE=60

# ticks, ns on CPU, and user ticks of a process
cpu() {
    local ns rest
    read -r ns rest < "/proc/$1/schedstat"
    awk -v ns="$ns" '{print $14 + $15, ns, $14}' "/proc/$1/stat"
}
now_ms() { awk '{printf "%d\n", $1 * 1000}' /proc/uptime; }
kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }

# punch_odd FILE N: punch the first 4 KiB of each of N 8 KiB blocks.
punch_odd() {
    local cmds i
    cmds=""
    i=0
    while [ "$i" -lt "$2" ]; do
        cmds="$cmds -c 'fpunch $((i * 8192)) 4096'"
        i=$((i + 1))
    done
    eval "xfs_io $cmds \"\$1\"" || fail "xfs_io fpunch on $1 failed"
    sync
}

fill() { dd if=/dev/urandom of="$1" bs=8192 count="$2" conv=notrunc,fsync 2> /dev/null || fail "dd $1"; }

# The daemon at verbose 2, its log in /tmp/bench.log: one line per update
# with what it sent.
mkdir -p /usr/local/libexec
mv /usr/local/bin/dmfilemapd /usr/local/libexec/dmfilemapd
cat > /usr/local/bin/dmfilemapd <<'WRAP'
#!/bin/sh
exec /usr/local/libexec/dmfilemapd "$1" "$2" "$3" "$4" "${5:-0}" 2 >> /tmp/bench.log 2>&1
WRAP
chmod +x /usr/local/bin/dmfilemapd

# follow WHAT FILE N PID FLOOR-LINE: time the daemon's answer to one change.
follow() {
    local what f n pid floor mark a b
    what=$1 f=$2 n=$3 pid=$4 floor=$5
    mark=$(wc -l < /tmp/bench.log)
    done_at=$(($(grep -c '^Updated group' /tmp/bench.log) + 1))
    kill -STOP "$pid"
    case $what in
        fill) fill "$f" "$n" ;;
        punch) punch_odd "$f" "$n" ;;
    esac
    sync
    a=$(cpu "$pid")
    t0=$(now_ms)
    kill -CONT "$pid"
    i=0
    while [ "$(grep -c '^Updated group' /tmp/bench.log)" -lt "$done_at" ]; do
        [ $i -lt 6000 ] || fail "no update logged in 600 s"
        sleep 0.1
        i=$((i + 1))
    done
    b=$(cpu "$pid")
    t1=$(now_ms)
    expect_group xfs "bench$n" "$f" > /dev/null
    sed -n "$((mark + 1)),\$p" /tmp/bench.log | grep '^Updated group' > /tmp/bench.updates
    awk -v what="$what" -v n="$n" -v a="$a" -v b="$b" -v floor="$floor" -v wall=$((t1 - t0)) \
        -v extents="$(file_extents "$f" | wc -l)" '
        function val(line, key,   m) { return match(line, key "=[0-9]+/[0-9]+") ? substr(line, RSTART + length(key) + 1, RLENGTH - length(key) - 1) : "0/0" }
        function ns(v,   p) { split(v, p, "/"); return p[2] }
        {
            # "Updated group G: E extents, K kept, C created, D deleted, M messages[, L lists, A set_aux]"
            for (i = 1; i <= NF; i++) {
                w = $(i + 1); sub(/[,]$/, "", w)
                if (w == "created") c += $i
                if (w == "deleted") d += $i
                if (w == "messages") m += $i
                if (w == "lists") l += $i
                if (w == "set_aux") s += $i
            }
            u++
        }
        END {
            # Without the detail (older binaries), one set_aux per update.
            if (s == 0) s = u
            if (l == 0) l = m - c - d - s
            split(a, x, " "); split(b, y, " ")
            ticks = y[1] - x[1]; cpu = (y[2] - x[2]) / 1e6; user = y[3] - x[3]
            cr = ns(val(floor, "create")) / n / 1e6; de = ns(val(floor, "delete")) / n / 1e6
            sa = ns(val(floor, "set_aux")) / n / 1e6; li = ns(val(floor, "list")) / 1e6
            fl = c * cr + d * de + s * sa + l * li
            printf "BENCH n=%d %s to %d extents: %d update(s), %d messages (%d create, %d delete, %d set_aux, %d list), %d ticks (%d user), %.0f ms CPU in %d ms; floor %.0f ms: x%.2f\n", \
                n, what, extents, u, m, c, d, s, l, ticks, user, cpu, wall, fl, (fl > 0 ? cpu / fl : 0)
            printf "%s %d/%d/%.2f\n", what, ticks, m, (fl > 0 ? cpu / fl : 0) > "/tmp/bench.row." what
        }' /tmp/bench.updates
}

for n in $SIZES; do
    f=/mnt/xfs/bench$n
    fill "$f" "$n"
    punch_odd "$f" "$n"
    : > /tmp/bench.log
    map "$f" > /dev/null
    expect_group xfs "bench$n" "$f" > /dev/null
    sleep 2
    # Only now: the first process may still be handing over to the detached one.
    pid=$(one_daemon) || exit 1

    # The floor beside the group: a create or delete walks every region of
    # the device, so it pays for as many as the daemon's messages will.
    # Twice, keeping the cheaper run of each phase: the first messages of a
    # boot pay for cold caches.
    f1=$(dm_floor /dev/mapper/xfs "$n") || fail "dm_floor: $f1"
    f2=$(dm_floor /dev/mapper/xfs "$n") || fail "dm_floor: $f2"
    floor=$(echo "$f1 $f2" | awk '{
        for (i = 1; i <= NF; i++) if (split($i, kv, "=") == 2 && split(kv[2], tn, "/") == 2) {
            if (!(kv[1] in ns) || tn[2] < ns[kv[1]]) { ns[kv[1]] = tn[2]; t[kv[1]] = tn[1] }
            if (!(kv[1] in seen)) { seen[kv[1]] = 1; order[++k] = kv[1] }
        }
        line = "FLOOR n=" '"$n"'
        for (j = 1; j <= k; j++) line = line " " order[j] "=" t[order[j]] "/" ns[order[j]]
        hwm = $NF; sub(/.*=/, "", hwm)
        print line " hwm_kib=" hwm }')
    echo "BENCH $floor"

    # Idle: the file does not change.
    list_ms=$(echo "$floor" | sed -n 's/.* list=[0-9]*\/\([0-9]*\).*/\1/p' | awk '{print $1 / 1e6}')
    idle=""
    w=0
    while [ $w -lt "$WINDOWS" ]; do
        a=$(cpu "$pid")
        sleep 10
        b=$(cpu "$pid")
        idle="$idle $(awk -v a="$a" -v b="$b" -v l="$list_ms" 'BEGIN {
            split(a, x, " "); split(b, y, " "); ms = (y[2] - x[2]) / 1e6
            printf "%d/%.1f/%.2f", y[1] - x[1], ms, (l > 0 ? ms / l : 0) }')"
        w=$((w + 1))
    done
    echo "BENCH n=$n idle, per 10 s window (ticks/ms CPU/in full lists of the group, one full list = $list_ms ms):$idle"

    follow fill "$f" "$n" "$pid" "$floor"
    follow punch "$f" "$n" "$pid" "$floor"

    hwm=$(kib "$pid" VmHWM)
    fhwm=$(echo "$floor" | sed -n 's/.*hwm_kib=\([0-9]*\).*/\1/p')
    echo "BENCH n=$n peak RSS: daemon $hwm KiB, floor program $fhwm KiB: x$(awk -v a="$hwm" -v b="$fhwm" 'BEGIN { printf "%.2f", a / b }')"
    echo "TABLE n=$n idle$idle | $(cat /tmp/bench.row.fill) | $(cat /tmp/bench.row.punch) | rss $hwm KiB x$(awk -v a="$hwm" -v b="$fhwm" 'BEGIN { printf "%.2f", a / b }')"
    kill "$pid"
    wait_exit "$pid" 5
    dmstats delete --allregions xfs > /dev/null 2>&1
    rm -f "$f"
done
mv /usr/local/libexec/dmfilemapd /usr/local/bin/dmfilemapd
