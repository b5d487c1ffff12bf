# Helpers for the VM scenarios (busybox ash). A scenario is a shell file under
# /t/scenarios; it fails by calling `fail WHY` (or exiting non-zero) and passes
# by reaching its end.

EXT4=/mnt/ext4
XFS=/mnt/xfs
# Seconds a scenario waits for the daemon to bring the group in line.
SETTLE=${SETTLE:-3}

# Prints to stderr so that a failure inside $(...) still reaches the log;
# callers of helpers used that way add `|| exit 1`.
fail() {
    echo "FAIL: $*" >&2
    exit 1
}

note() { echo "-- $*"; }

# Runs a command, showing it; fails the scenario if it fails.
run() {
    echo "+ $*" | cut -c1-200
    "$@" || fail "command failed ($?): $*"
}

# --- devices -------------------------------------------------------------

# make_dev NAME FSTYPE MIB: a linear dm device over a loop device over a sparse
# file in tmpfs, with a fresh file system mounted on /mnt/NAME.
make_dev() {
    local name fs mib img loopdev
    name=$1 fs=$2 mib=$3
    img=/tmp/$name.img
    truncate -s "${mib}M" "$img" || return 1
    loopdev=$(losetup -f) || return 1
    losetup "$loopdev" "$img" || return 1
    dmsetup create "$name" --table "0 $((mib * 2048)) linear $loopdev 0" || return 1
    dmsetup mknodes "$name" || return 1
    case $fs in
        ext4) mkfs.ext4 -q -F "/dev/mapper/$name" || return 1 ;;
        xfs) mkfs.xfs -q -f "/dev/mapper/$name" || return 1 ;;
        btrfs) mkfs.btrfs -q -f "/dev/mapper/$name" || return 1 ;;
    esac
    mkdir -p "/mnt/$name"
    mount -t "$fs" "/dev/mapper/$name" "/mnt/$name" || return 1
}

setup_devices() {
    make_dev ext4 ext4 1024 && make_dev xfs xfs 1024
}

# dm device name holding FILE (our devices are named after their mount point).
dev_of() {
    case $1 in
        /mnt/ext4/*) echo ext4 ;;
        /mnt/xfs/*) echo xfs ;;
        /mnt/btrfs/*) echo btrfs ;;
        *) echo "dev_of: no dm device for $1" >&2; return 1 ;;
    esac
}

# clear_device DEV: no region on DEV, nothing in its file system.
clear_device() {
    local id
    # One process for all regions (each dmsetup start costs here); one
    # message per region where dmstats chokes on other programs' aux data.
    [ -z "$(stats_list "$1")" ] || dmstats delete --allregions "$1" > /dev/null 2>&1
    stats_list "$1" | sed -n 's/^\([0-9]*\): .*/\1/p' | while read -r id; do
        dmsetup message "$1" 0 "@stats_delete $id"
    done
    rm -rf "/mnt/$1"/* 2>/dev/null
}

# Every scenario starts from here: no daemon, no region, empty file systems.
reset_world() {
    local d p pid
    kill_daemons
    for d in ext4 xfs btrfs; do
        [ -e "/dev/mapper/$d" ] || continue
        clear_device "$d"
    done
    # Anything a scenario left behind (holders, sleepers), but init, us and
    # kernel threads (which have no exe). Builtins only: a fork costs here.
    for p in /proc/[0-9]*; do
        pid=${p#/proc/}
        [ "$pid" -eq 1 ] || [ "$pid" -eq $$ ] && continue
        [ -e "$p/exe" ] || continue
        kill -9 "$pid" 2>/dev/null
    done
    [ -z "${BOOT_INOTIFY_INSTANCES:-}" ] \
        || echo "$BOOT_INOTIFY_INSTANCES" > /proc/sys/fs/inotify/max_user_instances
    return 0
}

# --- processes -----------------------------------------------------------

# Pids of live (not zombie) dmfilemapd processes.
daemon_pids() {
    local pid
    for pid in $(pidof dmfilemapd); do
        alive "$pid" && echo "$pid"
    done
    return 0
}

# The process exists and is not a zombie (builtins only).
alive() {
    local line
    [ -r "/proc/$1/status" ] || return 1
    while read -r line; do
        case $line in
            State:*Z*) return 1 ;;
            State:*) return 0 ;;
        esac
    done < "/proc/$1/status" 2> /dev/null
    return 1
}

kill_daemons() {
    local pid i
    for pid in $(daemon_pids); do kill -9 "$pid" 2>/dev/null; done
    i=0
    while [ -n "$(daemon_pids)" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
}

# Exactly one daemon running, and it is the detached copy: prints its pid.
# The launcher (the copy dmstats or a test ran) also has init as parent once
# dmstats has exited without waiting for it, and is alone while it checks the
# arguments; only the detached copy leads its own session (setsid). So: one
# live dmfilemapd, adopted by init, leading its session, seen twice in a row.
one_daemon() {
    local i line seen
    i=0
    seen=""
    while [ $i -lt 50 ]; do
        set -- $(daemon_pids)
        if [ $# -eq 1 ] && read -r line < "/proc/$1/stat" 2> /dev/null; then
            set -- $line
            if [ "$4" = 1 ] && [ "$6" = "$1" ]; then
                [ "$seen" = "$1" ] && { echo "$1"; return 0; }
                seen=$1
            else
                seen=""
            fi
        else
            seen=""
        fi
        sleep 0.1
        i=$((i + 1))
    done
    fail "expected one detached dmfilemapd, found: $(daemon_pids | tr '\n' ' ')"
}

# wait_exit PID [SECONDS]: the process ends within the time.
wait_exit() {
    local n i
    n=$(( ${2:-3} * 10 ))
    i=0
    while alive "$1"; do
        [ $i -ge $n ] && return 1
        sleep 0.1
        i=$((i + 1))
    done
    return 0
}

# --- dm-stats ------------------------------------------------------------

stats_list() { dmsetup message "$1" 0 @stats_list; }

# map FILE [dmstats options...]: start_filemap with the file first: with
# --nomonitor `dmstats create --filemap --nomonitor` (the group alone), else
# the group followed by a daemon as VM_FILEMAP says; prints the group id.
map() {
    local f
    f=$1
    shift
    start_filemap "$@" "$f"
}

# The guest's release (VM_RELEASE) and how start_filemap starts the daemon
# (VM_FILEMAP): run.sh writes both into /t/env.
[ -f /t/env ] && . /t/env
VM_RELEASE=${VM_RELEASE:-12}
VM_FILEMAP=${VM_FILEMAP:-dmstats}

# start_filemap [dmstats create options] FILE: maps FILE into a new group and
# has dmfilemapd follow it; prints the group id (the creator's own output goes
# to stderr). With --nomonitor: the group only, made by dmstats. Scenarios
# start every daemon-followed group here, so that the starter is one choice:
#   dmstats  `dmstats create --filemap` starts dmfilemapd from PATH (Debian 12).
#   hand     Debian 13's dmstats is built without dmfilemapd support ("dmfilemapd
#            support disabled."): the group is made with --nomonitor and the
#            daemon started as dmstats would start it: fd 3 on the file, the
#            group id, the absolute path, the --follow mode, detached, verbose 0.
#   map      `dmfilemapd map [--follow M] [--alias A] [--precise] [--bounds L] FILE`
#            makes the group as dmstats does, prints the same line and follows
#            it (the integration point for the `map` subcommand; the default on
#            Debian 13, whose dmstats starts no daemon).
start_filemap() {
    local a prev f mode monitor how out gid
    mode=inode monitor=1 prev=""
    for a; do
        case $prev in --follow) mode=$a ;; esac
        case $a in --follow=*) mode=${a#--follow=} ;; --nomonitor) monitor=0 ;; esac
        prev=$a f=$a
    done
    how=$VM_FILEMAP
    [ $monitor = 1 ] || how=dmstats
    if [ "$how" = hand ]; then
        # dmstats refuses --follow with --nomonitor: the mode is the daemon's.
        # (The loop's word list is expanded once: "$@" is rebuilt in place.)
        prev=""
        for a; do
            shift
            case $prev in --follow) prev=""; continue ;; esac
            prev=$a
            case $a in --follow|--follow=*) continue ;; esac
            set -- "$@" "$a"
        done
    fi
    case $how in
        dmstats) out=$(dmstats create --filemap "$@" 2>&1) ;;
        hand) out=$(dmstats create --filemap --nomonitor "$@" 2>&1) ;;
        map) out=$(dmfilemapd map "$@" 2>&1) ;;
        *) fail "start_filemap: VM_FILEMAP=$how (dmstats, hand or map)" ;;
    esac || { echo "$out" >&2; fail "$how: filemap of $*: $out"; }
    echo "$out" >&2
    gid=$(echo "$out" | sed -n 's/.*as group ID \([0-9]*\)\..*/\1/p')
    [ -n "$gid" ] || fail "no group id in: $out"
    if [ "$how" = hand ]; then
        case $f in /*) ;; *) f=$PWD/$f ;; esac
        VM_AS_DMSTATS=1 dmfilemapd 3 "$gid" "$f" "$mode" 0 0 3< "$f" >&2 \
            || fail "dmfilemapd 3 $gid $f $mode 0 0 failed"
    fi
    echo "$gid"
}

# The file's extents as libdm maps them: FIEMAP (synced) in 512-byte sectors,
# delalloc and unknown extents skipped, physically contiguous neighbours (in
# logical order) merged. One "start+len" a line, sorted.
file_extents() {
    filefrag -s -v -b512 "$1" | awk '
        /^ *[0-9]+: / {
            skip = ($0 ~ /unknown_loc|delalloc/)
            l = $0
            sub(/^ +/, "", l); gsub(/\.\./, " ", l); gsub(/:/, " ", l)
            split(l, f, " ")
            if (skip) next
            ps = f[4] + 0; n = f[6] + 0
            if (n == 0) next
            if (have && ps == end) { len += n; end += n; next }
            if (have) print start "+" len
            have = 1; start = ps; len = n; end = ps + n
        }
        END { if (have) print start "+" len }' | sort
}

# check_group DEV ALIAS FILE: one comparison of the group named ALIAS on DEV
# with the file's extents. Silent and true when they match; otherwise prints why.
# Checks: one group has the alias; its descriptor sits on its lowest member;
# every member exists; no other region of ours carries a descriptor; the
# members tile the merged extents (see check_tiling); no region of the
# group's program_id with empty aux or our mark lies outside every group
# (stray), but the ids in CG_IGNORE (regions made by hand).
check_group() {
    local dev alias file
    dev=$1 alias=$2 file=$3
    : > /tmp/cg.stray
    stats_list "$dev" > /tmp/cg.list 2>&1 || { echo "@stats_list failed: $(cat /tmp/cg.list)"; return 1; }
    if [ -n "$file" ]; then file_extents "$file" > /tmp/cg.ext; else : > /tmp/cg.ext; fi
    # The alias through the environment: awk -v would read its backslashes
    # as escapes (file names may hold any byte but NUL and '/').
    CG_WANT=$alias awk -v extfile=/tmp/cg.ext -v noext="${CG_NOEXT:-0}" -v ignore=" ${CG_IGNORE:-} " '
        BEGIN { want = ENVIRON["CG_WANT"] }
        function expand(m, out,   parts, i, r, a, k, n) {
            n = split(m, parts, ",")
            for (i = 1; i <= n; i++) {
                if (split(parts[i], r, "-") == 2) { for (k = r[1] + 0; k <= r[2] + 0; k++) out[k] = 1 }
                else out[parts[i] + 0] = 1
            }
        }
        {
            id = $1; sub(/:$/, "", id); id += 0
            ids[id] = 1
            whole[id] = $0
            split($2, sl, "+"); range[id] = (sl[1] + 0) "+" (sl[2] + 0)
            prog[id] = $4
            aux = $0
            # strip "ID: START+LEN STEP PROG " (aux may hold spaces)
            sub(/^[0-9]+: [0-9]+\+[0-9]+ [0-9]+ [^ ]+ /, "", aux)
            sub(/ histogram:[0-9,]+$/, "", aux)
            sub(/ precise_timestamps$/, "", aux)
            auxof[id] = aux
            if (substr(aux, 1, 10) == "DMS_GROUP=") {
                d = substr(aux, 11)
                if (substr(d, 1, 1) == "\"") {
                    p = index(substr(d, 2), "\":")
                    a = substr(d, 2, p - 1); rest = substr(d, p + 3)
                } else {
                    p = index(d, ":")
                    a = substr(d, 1, p - 1); rest = substr(d, p + 1)
                }
                match(rest, /^[0-9,-]+#/)
                mem = substr(rest, 1, RLENGTH - 1)
                ngroups++
                galias[id] = a; gmem[id] = mem
            }
        }
        END {
            while ((getline line < extfile) > 0) { ext[line]++; next_ext++ }
            found = -1
            for (g in galias) {
                delete m; expand(gmem[g], m)
                for (k in m) ingroup[k] = g
                if (galias[g] == want) {
                    if (found >= 0) { print "two groups named " want ": " found " and " g; bad = 1 }
                    found = g
                }
            }
            if (found < 0) {
                if (next_ext == 0 && !noext) exit 0
                print "no group named \"" want "\" (" ngroups + 0 " groups)"; exit 1
            }
            if (next_ext == 0 && !noext) { print "file has no extents but group " found " exists"; exit 1 }
            delete m; expand(gmem[found], m)
            lowest = -1
            for (k in m) {
                k += 0
                if (lowest < 0 || k < lowest) lowest = k
                if (!(k in ids)) { print "member " k " of group " found " does not exist"; bad = 1; continue }
                if (k != found && substr(auxof[k], 1, 10) == "DMS_GROUP=") { print "member " k " carries a second descriptor"; bad = 1 }
                have[range[k]]++
            }
            if (lowest != found + 0) { print "descriptor on " found " but lowest member is " lowest; bad = 1 }
            for (r in have) {
                if (have[r] > 1) { print "region " r " appears " have[r] " times"; bad = 1 }
            }
            # The member ranges, for check_tiling.
            printf "" > "/tmp/cg.ranges"
            printf "" > "/tmp/cg.regions"
            for (k in m) if ((k + 0) in ids) {
                print range[k + 0] > "/tmp/cg.ranges"
                print (k + 0), range[k + 0] > "/tmp/cg.regions"
            }
            printf "" > "/tmp/cg.stray"
            for (k in ids) {
                if (prog[k] == prog[found] && !(k in ingroup) && index(ignore, " " k " ") == 0 &&
                    (auxof[k] == "-" || auxof[k] == "" || auxof[k] ~ /^-dmfilemapd:/)) {
                    stray = stray " " k; bad = 1
                    print whole[k] > "/tmp/cg.stray"
                }
            }
            if (stray != "") print "stray regions outside any group:" substr(stray, 1, 300)
            if (!bad) print "members " gmem[found] > "/tmp/cg.members"
            exit bad
        }' /tmp/cg.list || return 1
    [ "${CG_NOEXT:-0}" = 1 ] || [ ! -s /tmp/cg.ext ] || check_tiling /tmp/cg.ext /tmp/cg.ranges
}

# check_tiling EXTENTS REGIONS: files of "start+len" lines. True when the
# regions tile the extents: pairwise disjoint, each inside one extent, and
# their union the union of the extents (a region lying wholly inside an
# extent is kept whatever its length, so a grown extent holds several).
# Otherwise prints why.
check_tiling() {
    { sed 's/^/0 /' "$1"; sed 's/^/1 /' "$2"; } |
        awk '{ split($2, a, "+"); print a[1] + 0, a[1] + a[2], $1 }' |
        sort -n -k1,1 -k3,3 |
        awk '
            # Sorted by start, extents (kind 0) before regions (kind 1).
            $3 == 0 {
                if ($1 < eend) { print "extents overlap at " $1; bad = 1 }
                es = $1; eend = $2; elen += $2 - $1; next
            }
            {
                r = $1 "+" ($2 - $1)
                if ($1 < rend) { overlap = overlap " " r; bad = 1 }
                if ($1 < es || $2 > eend) { outside = outside " " r; bad = 1 }
                if ($2 > rend) rend = $2
                rlen += $2 - $1; nr++
            }
            END {
                if (overlap != "") print "regions overlapping another:" substr(overlap, 1, 300)
                if (outside != "") print "regions not inside one extent:" substr(outside, 1, 300)
                if (rlen != elen) { print "regions cover " rlen " sectors, extents " elen; bad = 1 }
                print nr > "/tmp/cg.nregions"
                exit bad
            }'
}

# expect_group DEV ALIAS FILE: polls check_group for up to $SETTLE seconds.
expect_group() {
    local i n
    i=0
    n=$((SETTLE * 10))
    while ! check_group "$@" > /tmp/eg.why; do
        if [ $i -ge $n ]; then
            echo "--- @stats_list on $1:"
            head -n 12 /tmp/cg.list
            echo "--- extents of ${3:-?}:"
            head -n 12 /tmp/cg.ext
            if [ -s /tmp/cg.stray ]; then
                # Whole lines (aux data, program_id): our mark tells a
                # region of ours from one dmstats or a hand made.
                echo "--- stray regions, whole @stats_list lines:"
                head -n 20 /tmp/cg.stray
                echo "--- processes:"
                ps 2>/dev/null | grep -E 'dmstats|dmsetup|dmfilemapd' | grep -v grep
            fi
            fail "group \"$2\" on $1 does not match ${3:-no file} after ${EG_BOUND:-${SETTLE}s}: $(head -n 3 /tmp/eg.why | tr '\n' ';')"
        fi
        sleep 0.1
        i=$((i + 1))
    done
    note "group \"$2\" tiles $(wc -l < /tmp/cg.ext) extents with $(cat /tmp/cg.nregions 2>/dev/null) regions after ~$((i / 10)).$((i % 10)) s"
}

# expect_group_by SECONDS DEV ALIAS FILE: expect_group, polling for SECONDS
# of the guest's clock, for a bound the daemon's own timers set (its 30 s
# full check) rather than a settle: expect_group counts polls, and on a
# loaded machine 350 of them take minutes. Fails as expect_group does.
expect_group_by() {
    local end secs
    secs=$1
    end=$(($(ks_now_ms) + secs * 1000))
    shift
    while ! check_group "$@" > /tmp/eg.why; do
        [ "$(ks_now_ms)" -lt "$end" ] || break
        sleep 0.5
    done
    SETTLE=0 EG_BOUND="$secs s of the clock" expect_group "$@"
}

# A descriptor naming ALIAS is on DEV.
group_exists() { stats_list "$1" | grep -qE "DMS_GROUP=\"?$2\"?:"; }

# expect_no_group DEV ALIAS: the group disappears within $SETTLE seconds.
expect_no_group() {
    local i
    i=0
    while group_exists "$1" "$2"; do
        [ $i -ge $((SETTLE * 10)) ] && fail "group \"$2\" still on $1: $(stats_list "$1" | head -c 300)"
        sleep 0.1
        i=$((i + 1))
    done
}

# The group's regions after a successful check_group, "id start+len" a
# line, by start.
group_regions() { sort -n -t' ' -k2,2 /tmp/cg.regions; }

# region_reads DEV ID: reads counted by region ID (summed over its areas).
region_reads() {
    dmsetup message "$1" 0 "@stats_print $2" | awk '{ n += $2 } END { print n + 0 }'
}

# expect_kept BEFORE: after a successful check_group, every region listed in
# the file BEFORE ("id start+len" lines) that lies wholly inside one of the
# file's extents is still a member, with the same id and range.
expect_kept() {
    awk -v before="$1" '
        FILENAME == "/tmp/cg.ext" { split($1, a, "+"); es[++n] = a[1] + 0; ee[n] = a[1] + a[2]; next }
        { now[$1 " " $2] = 1 }
        END {
            while ((getline line < before) > 0) {
                split(line, f, " "); split(f[2], r, "+")
                s = r[1] + 0; e = r[1] + r[2]
                for (i = 1; i <= n; i++) if (es[i] <= s && e <= ee[i] && !((f[1] " " f[2]) in now)) lost = lost " " line
            }
            if (lost != "") { print "regions inside an extent not kept:" substr(lost, 1, 300); exit 1 }
        }' /tmp/cg.ext /tmp/cg.regions || fail "a region inside an extent lost its id"
}

# Direct I/O, bypassing the page cache so that every request reaches dm-stats.
append_direct() { run xfs_io -d -c "pwrite -q -S 0x61 -b $3 $2 $3" "$1"; }
read_direct() { xfs_io -d -r -c "pread -q -b 1m 0 $(stat -c %s "$1")" "$1" || fail "read of $1 failed"; }

# The file grows in direct-write steps after being read: the regions tile
# the file after each step, and the first region keeps its id, range and
# read counter.
body_tile_growth() {
    local fs f pid step id range reads now
    fs=$1
    f=/mnt/$fs/tiles
    write_mib "$f" 1
    map "$f" > /dev/null
    pid=$(one_daemon) || exit 1
    expect_group "$fs" tiles "$f"
    read_direct "$f"
    set -- $(group_regions | head -n 1)
    id=$1 range=$2
    reads=$(region_reads "$fs" "$id")
    [ "$reads" -gt 0 ] || fail "region $id counted no read of the file"
    step=0
    while [ $step -lt 6 ]; do
        group_regions > /tmp/tg.before
        append_direct "$f" $((1048576 + step * 262144)) 262144
        expect_group "$fs" tiles "$f"
        expect_kept /tmp/tg.before
        step=$((step + 1))
    done
    region_line "$fs" "$id" | grep -q "^$id: $range " || fail "region $id ($range) gone after growth: $(stats_list "$fs" | head -c 400)"
    now=$(region_reads "$fs" "$id")
    [ "$now" -ge "$reads" ] || fail "region $id lost its counters: $reads reads, now $now"
    note "region $id ($range) kept $now reads over 6 growth steps; $(cat /tmp/cg.nregions) regions for $(wc -l < /tmp/cg.ext) extents"
    alive "$pid" || fail "daemon exited"
}

# Grown in steps (so an extent holds several tiles), then cut inside a tile:
# the tiles inside what remains keep their ids, the file is tiled.
body_tile_shrink() {
    local fs f pid step size
    fs=$1
    f=/mnt/$fs/tshrink
    write_mib "$f" 1
    map "$f" > /dev/null
    pid=$(one_daemon) || exit 1
    expect_group "$fs" tshrink "$f"
    step=0
    while [ $step -lt 4 ]; do
        append_direct "$f" $((1048576 + step * 262144)) 262144
        expect_group "$fs" tshrink "$f"
        step=$((step + 1))
    done
    for size in 1900K 1300K 1M 300K; do
        group_regions > /tmp/ts.before
        run truncate -s "$size" "$f"
        expect_group "$fs" tshrink "$f"
        expect_kept /tmp/ts.before
    done
    alive "$pid" || fail "daemon exited"
}

# --- files ---------------------------------------------------------------

# write_mib FILE MIB [SEEK_MIB]: writes random-ish data and syncs it out.
write_mib() {
    dd if=/dev/urandom of="$1" bs=1M count="$2" seek="${3:-0}" conv=notrunc,fsync 2> /dev/null \
        || fail "dd to $1 failed"
}

# fragment FILE: punches every other 4 KiB block of the first MIB MiB, so the
# file has many extents (and the group many non-contiguous members).
fragment() {
    local f mib cmds off end
    f=$1 mib=$2
    cmds=""
    off=0
    end=$((mib * 1048576))
    while [ $off -lt $end ]; do
        cmds="$cmds -c 'fpunch $off 4096'"
        off=$((off + 8192))
    done
    eval "xfs_io $cmds \"\$f\"" || fail "xfs_io fpunch on $f failed"
    sync
}

# The region lines not belonging to any dmstats group, in canonical form.
other_regions() { stats_list "$1" | grep -v "DMS_GROUP=" | grep -v " dmstats -\$" | grep -v " dmstats -dmfilemapd:"; }

# check_consistent DEV ALIAS: the group's descriptor names only existing
# regions, sits on its lowest member, and no region of ours is outside it;
# its extents are not compared (for states an interrupted update may leave).
check_consistent() { CG_NOEXT=1 check_group "$1" "$2" ""; }

# The group's member list (after a successful check_group).
group_members() { sed -n 's/^members //p' /tmp/cg.members; }

# The @stats_list line of region ID on DEV.
region_line() { stats_list "$1" | grep "^$2: "; }

# make_fragmented FILE MIB: a file of MIB MiB with every other 4 KiB block of
# it punched out: MIB * 128 extents.
make_fragmented() {
    write_mib "$1" "$2"
    fragment "$1" "$2"
}

# The daemon is still running after SECONDS.
expect_alive() {
    sleep "${2:-1}"
    alive "$1" || fail "dmfilemapd $1 exited early"
}

# --- shared scenario bodies (one per file system) -------------------------

# The file grows (appended data, some of it fragmented): the group follows.
body_growth() {
    local fs f pid mib
    fs=$1
    f=/mnt/$fs/grow
    make_fragmented "$f" 1
    start_filemap "$f" > /dev/null
    pid=$(one_daemon) || exit 1
    expect_group "$fs" grow "$f"
    for mib in 2 4 6; do
        write_mib "$f" 2 "$mib"
        expect_group "$fs" grow "$f"
    done
    # Growth that adds many extents at once.
    write_mib "$f" 1 8
    xfs_io -c "fpunch $((8 * 1048576 + 4096)) 4096" -c "fpunch $((8 * 1048576 + 16384)) 8192" "$f"
    expect_group "$fs" grow "$f"
    alive "$pid" || fail "daemon exited"
}

# The file shrinks by truncation, in steps, into its fragmented part.
body_shrink() {
    local fs f pid size
    fs=$1
    f=/mnt/$fs/shrink
    make_fragmented "$f" 2
    write_mib "$f" 6 2
    start_filemap "$f" > /dev/null
    pid=$(one_daemon) || exit 1
    expect_group "$fs" shrink "$f"
    for size in 5M 2M 1M 100K; do
        run truncate -s "$size" "$f"
        expect_group "$fs" shrink "$f"
    done
    alive "$pid" || fail "daemon exited"
}

# A same-size rewrite that moves blocks: st_blocks stays, the extents change.
body_rewrite() {
    local fs f pid before after blocks n
    fs=$1
    f=/mnt/$fs/rewrite
    make_fragmented "$f" 1
    write_mib "$f" 4 1
    start_filemap "$f" > /dev/null
    pid=$(one_daemon) || exit 1
    expect_group "$fs" rewrite "$f"
    before=$(file_extents "$f" | tr '\n' ' ')
    blocks=$(stat -c %b "$f")
    # Free a middle MiB, let another file take the space, then write it again;
    # the allocator may still hand the same blocks back: then try again.
    n=0
    while :; do
        n=$((n + 1))
        run xfs_io -c "fpunch 2M 1M" -c fsync "$f"
        # A larger filler each try: xfs (seen on arm64) may place a small one
        # elsewhere and hand the freed blocks back to the rewrite.
        write_mib "/mnt/$fs/filler$n" "$n"
        write_mib "$f" 1 2
        after=$(file_extents "$f" | tr '\n' ' ')
        [ "$before" != "$after" ] && break
        # Seen on arm64 (Debian 13, ext4): the allocator hands the freed
        # blocks back every time. Nothing moved, so nothing to follow: said,
        # not failed (the group is still checked below).
        [ $n -lt 8 ] || { note "the rewrite did not move any block in $n tries: void here"; break; }
    done
    [ "$(stat -c %b "$f")" = "$blocks" ] || note "st_blocks changed: $blocks -> $(stat -c %b "$f")"
    expect_group "$fs" rewrite "$f"
    alive "$pid" || fail "daemon exited"
}

# --- refusals (bad input) --------------------------------------------------

REFUSALS_BAD=0

# refuse DESC SHELL-COMMAND: runs the command (which calls dmfilemapd) with a
# guard; wants exit status 1, one line on stderr naming the problem, nothing
# on stdout and no daemon left behind. Counts failures in REFUSALS_BAD.
refuse() {
    local desc cmd rc lines why
    desc=$1 cmd=$2
    timeout -s KILL 5 sh -c "$cmd" > /tmp/r.out 2> /tmp/r.err
    rc=$?
    lines=$(grep -c . /tmp/r.err)
    why=""
    if [ $rc -eq 137 ]; then why="hung (killed after 5 s)"
    elif [ $rc -ne 1 ]; then why="exit status $rc"
    elif [ "$lines" -ne "${REFUSE_LINES:-1}" ]; then why="$lines lines on stderr"
    elif [ -s /tmp/r.out ]; then why="output on stdout: $(head -c 100 /tmp/r.out)"
    fi
    if [ -n "$(daemon_pids)" ]; then
        why="${why:+$why, }a daemon is running"
        kill_daemons
    fi
    if [ -n "$why" ]; then
        echo "BAD  $desc: $why; stderr: $(head -c 300 /tmp/r.err | tr '\n' '|')"
        REFUSALS_BAD=$((REFUSALS_BAD + 1))
    else
        echo "ok   $desc: $(cat /tmp/r.err)"
    fi
}

refusals_done() {
    [ "$REFUSALS_BAD" -eq 0 ] || fail "$REFUSALS_BAD case(s) not refused cleanly (see BAD lines)"
}

# --- kill sweep (SIGKILL during large updates) ---------------------------

ks_now_ms() { awk '{printf "%d\n", $1 * 1000}' /proc/uptime; }

# ks_outside DEV IGNORE: the number of regions of program dmstats that no
# descriptor names, but those in IGNORE; false (with why, on stderr) when a
# descriptor names a missing region.
ks_outside() {
    stats_list "$1" | awk -v ignore=" $2 " '
        function expand(m, id,   parts, i, r, k, n) {
            n = split(m, parts, ",")
            for (i = 1; i <= n; i++) {
                if (split(parts[i], r, "-") == 2) { for (k = r[1] + 0; k <= r[2] + 0; k++) { named[k] = 1; by[k] = id } }
                else { named[parts[i] + 0] = 1; by[parts[i] + 0] = id }
            }
        }
        {
            id = $1; sub(/:$/, "", id); id += 0
            ids[id] = 1; prog[id] = $4
            if (substr($5, 1, 10) == "DMS_GROUP=") {
                d = substr($5, index($5, ":") + 1)
                sub(/#.*/, "", d)
                expand(d, id)
            }
        }
        END {
            for (k in named) if (!(k in ids)) { print "descriptor on " by[k] " names missing region " k > "/dev/stderr"; bad = 1 }
            n = 0
            for (k in ids) if (prog[k] == "dmstats" && !(k in named) && index(ignore, " " k " ") == 0) n++
            print n
            exit bad
        }'
}

# The id of a region holding the file's descriptor (the lowest, should a
# kill have left two).
# The leader of the group named $2, in either dialect (Debian 13's dmstats
# writes it quoted).
ks_leader() { stats_list "$1" | sed -n "s/^\([0-9]*\): .* DMS_GROUP=\"\{0,1\}$2\"\{0,1\}:.*/\1/p" | head -1; }

ks_start() {
    exec 5< "$f"
    dmfilemapd 5 "$1" "$f" inode 1 "${2:-0}" >> /tmp/ks.log 2>&1 &
    echo $! > /tmp/ks.pid
    exec 5<&-
}

# The change of one direction, made while no daemon runs.
ks_change() {
    case $1 in
        grow) write_mib "$f" "$MIB"; fragment "$f" "$MIB" ;;
        shrink) truncate -s 8192 "$f" ;;
    esac
}

# Wait until the group matches the file; prints the milliseconds taken.
ks_settled_ms() {
    local t0 i
    t0=$(ks_now_ms)
    i=0
    while ! CG_IGNORE=$hand check_group ext4 ks "$f" > /tmp/ks.why; do
        i=$((i + 1))
        [ $i -lt 300 ] || fail "group does not match the file: $(head -c 300 /tmp/ks.why)"
        sleep 0.02
    done
    echo $(($(ks_now_ms) - t0))
}

# body_kill_sweep MOMENTS MIB: SIGKILL at MOMENTS moments spread over each
# of two large updates of a file of MIB * 128 extents: growing (a contiguous
# file punched every other block: ~MIB * 128 regions created) and shrinking
# (truncated to its first two blocks, one extent: as many deleted). After
# each kill: at most 32 regions of ours outside the group, no descriptor
# naming a missing region; then a new daemon started on the group settles
# it: nothing of ours outside, the group equal to the file; a region made by
# hand over the same blocks as the file's first extent stays as it was.
# One line per moment (KS_TAG, default "KILL") and a summary.
body_kill_sweep() {
    local N MIB BOUND f gid hand hand_line dir t t0 n span delay before after worst rounds i
    N=$1 MIB=$2 BOUND=32
    f=/mnt/ext4/ks
    write_mib "$f" 1
    gid=$(map "$f" --nomonitor) || exit 1
    hand=$(dmsetup message ext4 0 "@stats_create $(file_extents "$f" | head -1) /1 dmstats -") \
        || fail "could not make a region by hand"
    hand_line=$(region_line ext4 "$hand")
    note "group $gid; region $hand made by hand over the file's first extent: $hand_line"

    # One uninterrupted update each way, to spread the kills over its length.
    truncate -s 8192 "$f"
    ks_start "$gid"
    ks_settled_ms > /dev/null
    kill -TERM "$(cat /tmp/ks.pid)"; wait "$(cat /tmp/ks.pid)"
    for dir in grow shrink; do
        ks_change $dir
        gid=$(ks_leader ext4 ks)
        : > /tmp/ks.log
        t0=$(ks_now_ms)
        ks_start "$gid" 2
        n=0
        until grep -q 'Updated group' /tmp/ks.log; do
            n=$((n + 1))
            [ $n -lt 1000 ] || fail "$dir: no update in 10 s: $(cat /tmp/ks.log)"
            sleep 0.01
        done
        t=$(($(ks_now_ms) - t0))
        ks_settled_ms > /dev/null
        kill -TERM "$(cat /tmp/ks.pid)"; wait "$(cat /tmp/ks.pid)"
        eval "span_$dir=$t"
        echo "${KS_TAG:---} $dir: one update of $(grep 'Updated group' /tmp/ks.log | tail -1 | sed 's/.*: //'), done $t ms after the daemon started"
        if [ $dir = grow ]; then
            note "what dmstats shows of regions the daemon made (raw list, then report):"
            stats_list ext4 | sed -n '2,3p'
            dmstats report -o region_id,group_id,user_data ext4 | sed -n '1p;4,5p'
        fi
    done

    worst=0
    rounds=0
    i=0
    while [ $i -lt "$N" ]; do
        for dir in grow shrink; do
            eval "span=\$span_$dir"
            delay=$(awk -v i=$i -v n="$N" -v s="$span" 'BEGIN { printf "%.3f", s * 0.6 * i / n / 1000 }')
            ks_change $dir
            gid=$(ks_leader ext4 ks)
            ks_start "$gid"
            sleep "$delay"
            kill -KILL "$(cat /tmp/ks.pid)"
            wait "$(cat /tmp/ks.pid)" 2> /dev/null
            before=$(ks_outside ext4 "$hand") || fail "$dir, killed at $delay s: a descriptor names a missing region"
            gid=$(ks_leader ext4 ks)
            [ -n "$gid" ] || fail "$dir, killed at $delay s: the group is gone"
            ks_start "$gid"
            ks_settled_ms > /dev/null
            after=$(ks_outside ext4 "$hand") || fail "$dir, killed at $delay s: after the next daemon, a descriptor names a missing region"
            kill -TERM "$(cat /tmp/ks.pid)"; wait "$(cat /tmp/ks.pid)"
            echo "${KS_TAG:-KILL} $dir, killed at ${delay} s: $before outside after the kill, $after after the next daemon's update"
            [ "$before" -le $BOUND ] || fail "$dir, killed at $delay s: $before regions outside the group (bound $BOUND)"
            [ "$after" -eq 0 ] || fail "$dir, killed at $delay s: $after regions still outside after the next daemon"
            [ "$(region_line ext4 "$hand")" = "$hand_line" ] || fail "the region made by hand changed: $(region_line ext4 "$hand")"
            [ "$before" -le "$worst" ] || worst=$before
            rounds=$((rounds + 1))
        done
        i=$((i + 1))
    done
    echo "${KS_TAG:---} $rounds kill moments over ${MIB} MiB (~$((MIB * 128)) extents): at most $worst regions outside after a kill (bound $BOUND), 0 after the next daemon"
}
