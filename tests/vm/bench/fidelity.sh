# Fidelity benchmark on the real kernel, reported not asserted:
#   BENCH_CASES=log bash tests/vm/run.sh tests/vm/bench/fidelity.sh
# BENCH_CASES picks cases (default: log prealloc long floor observer; one
# case per boot keeps a run short), BENCH_LONG_STEPS the long case's steps
# (default 400) and BENCH_LONG_FS its file system (default ext4); run.sh
# exports BENCH_* into the guest.
# vm-timeout: 2200
#
# Truth: a region over the whole device with one 4 KiB area per block
# (`@stats_create - 8 dmstats truth`), cleared right after the group is made.
# A file's truth is the sum of @stats_print over the areas its final blocks
# occupy; the group's figure is the sum over its members. Prints BENCH lines.
#
# Reads and writes are compared in sectors, not requests: dm-stats counts a
# request once in every area it touches, so one 1 MiB read is 256 reads in
# the truth's 4 KiB areas but one in a group member holding it all.

CASES=${BENCH_CASES:-log prealloc long floor observer}
LONG_STEPS=${BENCH_LONG_STEPS:-400}
LONG_FS=${BENCH_LONG_FS:-ext4}

# Each figure goes to the results channel as soon as it is known, so a run
# cut short by the guard still reports what it measured.
bench() {
    echo "$*"
    echo "$*" > "${REPORT_TTY:-/dev/ttyS1}" 2> /dev/null
}

# truth_make DEV: the truth region's id.
truth_make() { dmsetup message "$1" 0 "@stats_create - 8 dmstats truth"; }

# truth_sum DEV ID FILE FIELD: counter FIELD (4 sectors read, 8 sectors
# written; 2 and 6 would be requests) summed over
# the truth areas under FILE's extents.
truth_sum() {
    local dev id file field s l first n total
    dev=$1 id=$2 file=$3 field=$4
    total=0
    for e in $(file_extents "$file"); do
        s=${e%+*} l=${e#*+}
        first=$((s / 8))
        n=$(((s + l + 7) / 8 - first))
        total=$((total + $(dmsetup message "$dev" 0 "@stats_print $id $first $n" |
            awk -v f="$field" '{ t += $f } END { print t + 0 }')))
    done
    echo "$total"
}

# group_sum DEV FIELD: the counter summed over the group's regions (after
# a successful check_group).
group_sum() {
    local total id
    total=0
    for id in $(cut -d' ' -f1 /tmp/cg.regions); do
        total=$((total + $(dmsetup message "$1" 0 "@stats_print $id" |
            awk -v f="$2" '{ t += $f } END { print t + 0 }')))
    done
    echo "$total"
}

pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.1f%%\n", 100 * a / b }'; }

# A fresh start for one case: no daemon, no region, empty file systems.
# Not reset_world: its sweep of leftover processes would kill boot.sh,
# which runs this scenario, and the guest would never report or power off.
fresh() {
    local d
    kill_daemons
    for d in ext4 xfs; do
        clear_device "$d"
    done
    [ ! -f /tmp/dmfilemapd.log ] || : > /tmp/dmfilemapd.log
    return 0
}

# With VM_DEBUG=1 the daemon logs each update: their sums, for the record.
updates() {
    [ -s /tmp/dmfilemapd.log ] || return 0
    awk '/Updated group/ { n++; sub(/.*: /, ""); gsub(/[(),]/, "")
            k += $3; c += $5; d += $7; f += $9; if ($7 > $9) other++ }
        END { printf "%d updates: %d created, %d deleted (%d folded), %d updates deleting more than they folded\n", n, c, d, f, other }' /tmp/dmfilemapd.log
}

# grow_and_read FS NAME STEPS STEP_BYTES READ: a file grown by direct
# appends, read back whole (direct) ~0.6 s after each step when READ=1.
# Prints "group truth regions extents" for FIELD.
grow_and_read() {
    local fs name steps bytes readback f tid step field g t
    fs=$1 name=$2 steps=$3 bytes=$4 readback=$5 field=$6
    f=/mnt/$fs/$name
    tid=$(truth_make "$fs")
    xfs_io -f -d -c "pwrite -q -S 0x62 -b $bytes 0 $bytes" "$f" || fail "first write"
    map "$f" > /dev/null 2>&1
    one_daemon > /dev/null || exit 1
    expect_group "$fs" "$name" "$f" > /dev/null
    dmsetup message "$fs" 0 "@stats_clear $tid"
    [ "$readback" = 1 ] && { sleep 0.6; read_direct "$f"; }
    step=1
    while [ $step -lt "$steps" ]; do
        xfs_io -d -c "pwrite -q -S 0x62 -b $bytes $((step * bytes)) $bytes" "$f" || fail "append"
        if [ "$readback" = 1 ]; then
            sleep 0.6
            read_direct "$f"
        fi
        step=$((step + 1))
    done
    SETTLE=10 expect_group "$fs" "$name" "$f" > /dev/null
    g=$(group_sum "$fs" "$field")
    t=$(truth_sum "$fs" "$tid" "$f" "$field")
    echo "$g $t $(cat /tmp/cg.nregions) $(wc -l < /tmp/cg.ext)"
}

case_log() {
    local fs
    for fs in ext4 xfs; do
        fresh
        set -- $(grow_and_read "$fs" log 40 262144 1 4)
        bench "BENCH log+reader $fs: 40 x 256 KiB direct appends, whole file read 0.6 s after each: sectors read counted $1 of $2 ($(pct "$1" "$2")), $3 regions for $4 extents"
    done
}

case_long() {
    fresh
    set -- $(grow_and_read "$LONG_FS" long "$LONG_STEPS" 16384 1 4)
    bench "BENCH long growth $LONG_FS: $LONG_STEPS x 16 KiB direct appends, read whole after each: sectors read counted $1 of $2 ($(pct "$1" "$2")), $3 regions held for $4 extents (budget ${DMFILEMAPD_BUDGET:-64} extra)"
    [ ! -s /tmp/dmfilemapd.log ] || bench "BENCH long daemon log: $(updates)"
}

case_floor() {
    fresh
    set -- $(grow_and_read ext4 floor 40 262144 0 8)
    bench "BENCH append-only direct writer ext4: sectors written counted $1 of $2 ($(pct "$1" "$2")); uncounted $(($2 - $1)) ($(pct $(($2 - $1)) "$2")): written to blocks the write itself allocated, on disk before any daemon could know them; $3 regions for $4 extents"
}

case_prealloc() {
    local fs f tid cmds g t
    for fs in ext4 xfs; do
        fresh
        f=/mnt/$fs/pre
        tid=$(truth_make "$fs")
        # Written whole, not only fallocated: a read of an unwritten extent
        # is answered with zeros by the file system and never reaches dm.
        run xfs_io -f -d -c "falloc 0 8m" -c "pwrite -q -S 0x70 -b 1m 0 8m" "$f" > /dev/null
        map "$f" > /dev/null 2>&1
        one_daemon > /dev/null || exit 1
        expect_group "$fs" pre "$f" > /dev/null
        dmsetup message "$fs" 0 "@stats_clear $tid"
        cmds=$(awk 'BEGIN { srand(7); for (i = 0; i < 400; i++) {
            printf " -c \"pwrite -q %d 4096\"", int(rand() * 2048) * 4096
            printf " -c \"pread -q %d 4096\"", int(rand() * 2048) * 4096 } }')
        eval "xfs_io -d $cmds \"\$f\"" || fail "random I/O"
        sleep 1.5
        expect_group "$fs" pre "$f" > /dev/null
        g="$(group_sum "$fs" 4) $(group_sum "$fs" 8)"
        t="$(truth_sum "$fs" "$tid" "$f" 4) $(truth_sum "$fs" "$tid" "$f" 8)"
        set -- $g $t
        bench "BENCH preallocated 8 MiB $fs, 400 random 4 KiB direct writes + 400 reads: sectors read counted $1 of $3 ($(pct "$1" "$3")), written $2 of $4 ($(pct "$2" "$4")), $(cat /tmp/cg.nregions) regions"
    done
}

# The buffered appender: 100 x 64 KiB, 100 ms apart, then sync. Write
# requests reaching the device (one whole-device area) and the file's
# extent count (physically contiguous pieces merged), without a daemon, with
# ours, and with a stand-in for a FIEMAP_FLAG_SYNC scanner (`filefrag -s`
# twice a second; C's daemon and this one before) to show the bench sees it.
case_observer() {
    local with f rid i reqs spy
    for with in none ours sync; do
        fresh
        f=/mnt/ext4/obs
        xfs_io -f -c "pwrite -q 0 64k" -c fsync "$f" > /dev/null || fail "first write"
        if [ $with = ours ]; then
            map "$f" > /dev/null 2>&1
            one_daemon > /dev/null || exit 1
            expect_group ext4 obs "$f" > /dev/null
        fi
        sync
        rid=$(dmsetup message ext4 0 "@stats_create - /1 dmstats reqs")
        spy=""
        if [ $with = sync ]; then
            while :; do filefrag -s "$f" > /dev/null 2>&1; sleep 0.5; done &
            spy=$!
        fi
        i=1
        while [ $i -lt 100 ]; do
            xfs_io -c "pwrite -q $((i * 65536)) 64k" "$f" > /dev/null
            sleep 0.1
            i=$((i + 1))
        done
        [ -z "$spy" ] || { kill "$spy"; wait "$spy" 2> /dev/null; }
        sync
        sleep 1
        reqs=$(dmsetup message ext4 0 "@stats_print $rid" | awk '{ t += $6 } END { print t + 0 }')
        bench "BENCH observer effect, buffered appender ext4, scanner $with: $reqs write requests, $(file_extents "$f" | wc -l) extents"
    done
}

now_s() { awk '{ print int($1) }' /proc/uptime; }
for c in $CASES; do
    t0=$(now_s)
    "case_$c"
    bench "BENCH case $c took $(($(now_s) - t0)) s"
done
