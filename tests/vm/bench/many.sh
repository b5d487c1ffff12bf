# vm-timeout: 2300
# Many files on one device (issue 18), reported, never asserted:
#   tests/vm/run.sh tests/vm/bench/many.sh
#   BENCH_MANY="40x25 200x5" tests/vm/run.sh tests/vm/bench/many.sh
#   VM_RELEASE=13 tests/vm/run.sh tests/vm/bench/many.sh
# For each case NxE (default 40x25 200x5 10x100): N files of E extents each
# on /dev/mapper/xfs, one group and one daemon per file, made the way
# start_filemap makes them (dmstats create --filemap on Debian 12, dmfilemapd
# map on 13); then
# - the daemons' summed CPU ticks (utime + stime of /proc/PID/stat, 10 ms
#   each) in BENCH_WINDOWS (3) idle windows of 10 s, after a settle of
#   BENCH_SETTLE (35) s so every daemon's first look is over;
# - the time for one file's change (a hole of the middle file filled) to
#   show in its group while the others idle, polled every 0.1 s with
#   check_group (which lists the device itself: the figure includes that);
# - the kernel memory of the regions (stats_current_allocated_bytes of
#   dm_mod, before and after the groups were made) and the daemons' summed RSS.
# BENCH_DAEMONS="name=path ..." (default "ours=/usr/local/bin/dmfilemapd")
# runs every case with each binary in turn, in the same boot, so that they
# share the host's load (under software emulation a busy host inflates the
# guest's CPU figures several times over): hand older builds to the guest
# with VM_BINS (e.g. VM_BINS=/tmp/dmfilemapd-main BENCH_DAEMONS="main=
# /usr/local/bin/dmfilemapd-main ours=/usr/local/bin/dmfilemapd"). Each runs
# from a PATH directory of its own under the name dmfilemapd, which is what
# dmstats execs. A C dmfilemapd (lvm2's, Debian 12 only: it needs Debian
# 12's libdevmapper) goes the same way, e.g. "c=/usr/local/bin/dmfilemapd-c";
# Debian ships none and none is built or committed here.
# Each daemon takes an inotify instance, of the 128 a user has by default
# (fs.inotify.max_user_instances): past them ours looks at its file each
# second instead and C's exits. BENCH_INOTIFY=N sets the limit for the run;
# the lines say how many daemons watch by inotify.
# Lines start with BENCH; one TABLE line per case and daemon.

CASES=${BENCH_MANY:-40x25 200x5 10x100}
WINDOWS=${BENCH_WINDOWS:-3}
SETTLE_S=${BENCH_SETTLE:-35}
DAEMONS=${BENCH_DAEMONS:-ours=/usr/local/bin/dmfilemapd}
[ -z "${BENCH_INOTIFY:-}" ] || echo "$BENCH_INOTIFY" > /proc/sys/fs/inotify/max_user_instances

# Each figure goes to the results channel as soon as it is known, so a run
# cut short by the guard still reports what it measured.
bench() {
    echo "$*"
    echo "$*" > /dev/ttyS1 2> /dev/null
}

now_ms() { awk '{printf "%d\n", $1 * 1000}' /proc/uptime; }
# The wall time of a fixed piece of work (an awk loop of 200,000 turns), in
# ms: how slow the host makes the guest just now. Under emulation the guest
# charges a process for the time its vCPU was not running too, so every CPU
# figure here scales with it; compare runs by figure / calibration.
calib() {
    local t0
    t0=$(now_ms)
    awk 'BEGIN { for (i = 0; i < 200000; i++) s += i }'
    echo $(($(now_ms) - t0))
}
alloc() { cat /sys/module/dm_mod/parameters/stats_current_allocated_bytes; }

# proc_sum FILE EXPR PID...: EXPR (awk, over one line of /proc/PID/FILE)
# summed over the pids given; a pid gone counts 0.
proc_sum() {
    local file expr p files
    file=$1 expr=$2
    shift 2
    files=""
    for p; do [ -r "/proc/$p/$file" ] && files="$files /proc/$p/$file"; done
    [ -n "$files" ] || { echo 0; return; }
    # shellcheck disable=SC2086
    awk "{ t += $expr } END { printf \"%d\\n\", t }" $files 2> /dev/null
}
# Ticks: utime + stime, 10 ms each.
ticks() { proc_sum stat '$14 + $15' "$@"; }
# CPU time in µs, from the scheduler's own count in ns: no 10 ms quantum per
# process, which at a fraction of a tick per daemon per window is most of
# the ticks' spread.
cpu_us() { proc_sum schedstat '$1 / 1000' "$@"; }

rss_kib() {
    local p files
    files=""
    for p; do [ -r "/proc/$p/status" ] && files="$files /proc/$p/status"; done
    # shellcheck disable=SC2086
    awk '$1 == "VmRSS:" { t += $2 } END { print t + 0 }' $files 2> /dev/null
}

# How many of the pids given hold an inotify instance.
watching() {
    local p n
    n=0
    for p; do
        ls -l "/proc/$p/fd" 2> /dev/null | grep -q 'anon_inode:inotify' && n=$((n + 1))
    done
    echo "$n"
}

# The daemons running now, detached: in a session other than the bench's
# (ours leads its own; C's calls setsid and then forks, so its daemon is in
# a new session without leading it).
detached_pids() {
    local p line mine
    read -r line < /proc/$$/stat
    set -- $line
    mine=$6
    for p in $(daemon_pids); do
        read -r line < "/proc/$p/stat" 2> /dev/null || continue
        set -- $line
        [ "$6" != "$mine" ] && echo "$p"
    done
    return 0
}

# make_files N E: N files of E extents each (E blocks of 4 KiB, each
# followed by a 4 KiB hole: a fill of E x 8 KiB, then the first half of
# each 8 KiB punched).
make_files() {
    local n e i j f cmds
    n=$1 e=$2
    cmds=""
    j=0
    while [ $j -lt "$e" ]; do
        cmds="$cmds -c 'fpunch $((j * 8192)) 4096'"
        j=$((j + 1))
    done
    i=0
    while [ $i -lt "$n" ]; do
        f=/mnt/xfs/m$i
        dd if=/dev/urandom of="$f" bs=8192 count="$e" conv=fsync 2> /dev/null || fail "dd $f"
        eval "xfs_io $cmds \"\$f\"" || fail "xfs_io fpunch on $f failed"
        i=$((i + 1))
    done
    sync
}

# followed_in FILE ALIAS: the time, from now, for the group to match the
# file, polled for up to 20 s; or why it did not. A daemon that never
# matches (C's exits at the check after an update that created a region,
# docs/measurements.md) costs the case that figure, not the rest of the
# bench.
followed_in() {
    local t0
    t0=$(now_ms)
    if (SETTLE=20 expect_group xfs "$2" "$1") > /tmp/many.eg 2>&1; then
        echo "$(($(now_ms) - t0)) ms"
    else
        echo "not matched after 20 s ($(sed -n 's/.*after 20s: //p' /tmp/many.eg | head -n 1))"
    fi
}

# one_case WHO N E: WHO names a daemon of BENCH_DAEMONS.
one_case() {
    local who n e i a0 a1 pids np t0 t1 w idle sum mid f regions rss ms ms2
    who=$1 n=$2 e=$3
    kill_daemons
    clear_device xfs
    a0=$(alloc)
    make_files "$n" "$e"
    t0=$(now_ms)
    i=0
    while [ $i -lt "$n" ]; do
        PATH=/opt/bench/$who:$PATH map "/mnt/xfs/m$i" > /dev/null 2>&1
        i=$((i + 1))
    done
    # Every daemon detached and alone in its session.
    i=0
    while [ "$(detached_pids | wc -l)" -lt "$n" ]; do
        [ $i -lt 600 ] || fail "$who ${n}x$e: $(detached_pids | wc -l) of $n daemons after 60 s"
        sleep 0.1
        i=$((i + 1))
    done
    t1=$(now_ms)
    a1=$(alloc)
    regions=$(stats_list xfs | wc -l)
    pids=$(detached_pids)
    np=$(echo "$pids" | wc -w)
    bench "BENCH $who ${n}x$e: $np daemons ($(watching $pids) watching by inotify, of $(cat /proc/sys/fs/inotify/max_user_instances) instances), $regions regions on the device, made in $((t1 - t0)) ms; dm-stats memory $(((a1 - a0) / 1024)) KiB ($(((a1 - a0) / regions)) bytes a region)"
    sleep "$SETTLE_S"

    idle=""
    sum=0
    w=0
    c0=$(calib)
    cpu=""
    while [ $w -lt "$WINDOWS" ]; do
        a=$(ticks $pids)
        ua=$(cpu_us $pids)
        sleep 10
        b=$(ticks $pids)
        ub=$(cpu_us $pids)
        idle="$idle $((b - a))"
        cpu="$cpu $(((ub - ua) / 1000))"
        sum=$((sum + b - a))
        w=$((w + 1))
    done
    c1=$(calib)
    per=$(awk -v s="$sum" -v w="$WINDOWS" -v n="$np" 'BEGIN { printf "%.2f", s / w / n }')
    bench "BENCH $who ${n}x$e idle: ticks per 10 s, all $np daemons:$idle (CPU ms:$cpu); per daemon $per; calibration $c0 ms before, $c1 ms after"

    # One file changes while the others idle: fill its first hole.
    mid=$((n / 2))
    f=/mnt/xfs/m$mid
    dd if=/dev/urandom of="$f" bs=4096 count=1 conv=notrunc,fsync 2> /dev/null || fail "dd $f"
    ms=$(followed_in "$f" "m$mid")
    # Then one more, the second hole, for a second figure.
    dd if=/dev/urandom of="$f" bs=4096 count=1 seek=2 conv=notrunc,fsync 2> /dev/null || fail "dd $f"
    ms2=$(followed_in "$f" "m$mid")
    bench "BENCH $who ${n}x$e change: file m$mid's group followed in $ms, then $ms2 (polled by check_group, 0.1 s apart)"
    rss=$(rss_kib $pids)
    alive_now=$(detached_pids | wc -l)
    bench "BENCH $who ${n}x$e memory: regions $(((a1 - a0) / 1024)) KiB of kernel memory; daemons' RSS $rss KiB in all ($((rss / np)) each); $alive_now daemons still running"
    bench "TABLE $who ${n}x$e | $np daemons, $(watching $pids) by inotify | ticks/10s:$idle (CPU ms:$cpu; per daemon $per; calibration $c0/$c1 ms) | change $ms, $ms2 | $regions regions, $(((a1 - a0) / 1024)) KiB"
    kill_daemons
    clear_device xfs
}

names=""
for d in $DAEMONS; do
    mkdir -p "/opt/bench/${d%%=*}"
    # A copy, not a link: the daemon re-executes itself to detach, and the
    # helpers find daemons by the name dmfilemapd.
    cp "${d#*=}" "/opt/bench/${d%%=*}/dmfilemapd" || fail "no daemon at ${d#*=}"
    names="$names ${d%%=*}"
done
for c in $CASES; do
    n=${c%x*} e=${c#*x}
    t=$(now_ms)
    for who in $names; do
        one_case "$who" "$n" "$e"
    done
    bench "BENCH case $c took $((($(now_ms) - t) / 1000)) s"
done
