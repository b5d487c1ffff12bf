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

# Every scenario starts from here: no daemon, no region, empty file systems.
reset_world() {
    local d p pid id
    kill_daemons
    for d in ext4 xfs btrfs; do
        [ -e "/dev/mapper/$d" ] || continue
        # One process for all regions (each dmsetup start costs here); one
        # message per region where dmstats chokes on other programs' aux data.
        [ -z "$(stats_list "$d")" ] || dmstats delete --allregions "$d" > /dev/null 2>&1
        stats_list "$d" | sed -n 's/^\([0-9]*\): .*/\1/p' | while read -r id; do
            dmsetup message "$d" 0 "@stats_delete $id"
        done
        rm -rf "/mnt/$d"/* 2>/dev/null
    done
    # Anything a scenario left behind (holders, sleepers), but init, us and
    # kernel threads (which have no exe). Builtins only: a fork costs here.
    for p in /proc/[0-9]*; do
        pid=${p#/proc/}
        [ "$pid" -eq 1 ] || [ "$pid" -eq $$ ] && continue
        [ -e "$p/exe" ] || continue
        kill -9 "$pid" 2>/dev/null
    done
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

# Exactly one daemon running, and it is the detached child (its parent gone,
# so init adopted it), not the parent about to exit: prints its pid.
one_daemon() {
    local i line
    i=0
    while [ $i -lt 30 ]; do
        set -- $(daemon_pids)
        if [ $# -eq 1 ] && read -r line < "/proc/$1/stat" 2> /dev/null; then
            set -- $line
            [ "$4" = 1 ] && { echo "$1"; return 0; }
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

# map FILE [dmstats options...]: `dmstats create --filemap` (which starts the
# daemon from PATH); prints the group id.
map() {
    local f out gid
    f=$1
    shift
    out=$(dmstats create --filemap "$@" "$f" 2>&1) || { echo "$out" >&2; fail "dmstats create --filemap $* $f: $out"; }
    echo "$out" >&2
    gid=$(echo "$out" | sed -n 's/.*as group ID \([0-9]*\)\..*/\1/p')
    [ -n "$gid" ] || fail "no group id in: $out"
    echo "$gid"
}

# The guest's release (VM_RELEASE) and how start_filemap starts the daemon
# (VM_FILEMAP): run.sh writes both into /t/env.
[ -f /t/env ] && . /t/env
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
#            it (the integration point for the `map` subcommand).
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
# every member exists; no other region of ours carries a descriptor; members
# (start+len) equal the merged extents as sets, without duplicates; no region
# of the group's program_id with empty aux lies outside every group (stray).
check_group() {
    local dev alias file
    dev=$1 alias=$2 file=$3
    stats_list "$dev" > /tmp/cg.list 2>&1 || { echo "@stats_list failed: $(cat /tmp/cg.list)"; return 1; }
    if [ -n "$file" ]; then file_extents "$file" > /tmp/cg.ext; else : > /tmp/cg.ext; fi
    awk -v want="$alias" -v extfile=/tmp/cg.ext -v noext="${CG_NOEXT:-0}" '
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
                if (!noext && !(r in ext)) { missing_e = missing_e " " r; bad = 1 }
            }
            for (r in ext) if (!noext && !(r in have)) { missing_r = missing_r " " r; bad = 1 }
            if (missing_e != "") print "regions not matching any extent:" substr(missing_e, 1, 300)
            if (missing_r != "") print "extents without a region:" substr(missing_r, 1, 300)
            for (k in ids) {
                if (prog[k] == prog[found] && !(k in ingroup) && (auxof[k] == "-" || auxof[k] == "")) {
                    stray = stray " " k; bad = 1
                }
            }
            if (stray != "") print "stray regions outside any group:" substr(stray, 1, 300)
            if (!bad) print "members " gmem[found] > "/tmp/cg.members"
            exit bad
        }' /tmp/cg.list
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
            fail "group \"$2\" on $1 does not match ${3:-no file} after ${SETTLE}s: $(head -n 3 /tmp/eg.why | tr '\n' ';')"
        fi
        sleep 0.1
        i=$((i + 1))
    done
    note "group \"$2\" matches $(wc -l < /tmp/cg.ext) extents after ~$((i / 10)).$((i % 10)) s"
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
other_regions() { stats_list "$1" | grep -v "DMS_GROUP=" | grep -v " dmstats -\$"; }

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
        write_mib "/mnt/$fs/filler$n" 1
        write_mib "$f" 1 2
        after=$(file_extents "$f" | tr '\n' ' ')
        [ "$before" != "$after" ] && break
        [ $n -lt 4 ] || fail "the rewrite did not move any block in $n tries (test is void)"
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
