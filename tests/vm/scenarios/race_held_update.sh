# vm-timeout: 240
# `dmstats update_filemap` held between its look (@stats_list) and its
# descriptor write while the daemon updates the group and sees its update
# stand: dmstats then writes the descriptor it computed from its old look,
# which leaves out the regions the daemon made meanwhile (dm-stats has no
# compare-and-swap). Only the daemon knows those regions: it must delete
# them, whenever it sees them left out.
#
# The hold, with no help from either program: libdm lists, then asks FIEMAP
# with FIEMAP_FLAG_SYNC, which waits for the file's dirty pages to be
# written; with the device suspended without flushing (--nolockfs: no
# freeze, which would write them first) that writeback waits until resume.
# The daemon asks FIEMAP without the flag (a dirty page is a delalloc
# extent it skips) and dm-stats messages work on a suspended device, so it
# updates meanwhile. The daemon is stopped (SIGSTOP) while dmstats is
# started and again while dmstats finishes, so each step happens in the
# order written here.
f=/mnt/ext4/held
make_fragmented "$f" 1
gid=$(start_filemap "$f") || exit 1
pid=$(one_daemon) || exit 1
expect_group ext4 held "$f"
trap 'dmsetup resume ext4 2> /dev/null; kill -CONT $pid 2> /dev/null' EXIT

# The pid of the process in uninterruptible sleep whose command line names
# update_filemap (Debian 13's dmstats runs under its own ld.so: no pidof).
held_dmstats() {
    local p l
    for p in /proc/[0-9]*; do
        read -r l < "$p/stat" 2> /dev/null || continue
        set -- $l
        [ "$3" = D ] || continue
        tr '\0' ' ' < "$p/cmdline" 2> /dev/null | grep -q update_filemap || continue
        echo "${p#/proc/}"
        return 0
    done
    return 1
}
members() { stats_list ext4 | sed -n 's/.*DMS_GROUP=[^:]*:\([0-9,-]*\)#.*/\1/p'; }

run kill -STOP "$pid"
# Growth written out (two extents the daemon will map), then one page left
# dirty further on (what holds dmstats).
write_mib "$f" 1 1
xfs_io -c "fpunch $((1048576 + 8192)) 4096" -c fsync "$f"
dd if=/dev/urandom of="$f" bs=4096 count=1 seek=768 conv=notrunc 2> /dev/null || fail "dd failed"
before=$(members)
run dmsetup suspend --nolockfs --noflush ext4
dmstats update_filemap --nomonitor --groupid "$gid" "$f" > /tmp/held.out 2>&1 &
i=0
until ds=$(held_dmstats); do
    i=$((i + 1))
    [ $i -lt 100 ] || fail "dmstats update_filemap is not held in FIEMAP: $(cat /tmp/held.out)"
    sleep 0.1
done
note "dmstats $ds held in $(cat /proc/$ds/wchan 2> /dev/null), group $gid: $before"

# The daemon updates the group while dmstats holds its old look, and lists
# it again (its once-a-second check) so that it sees its update stand.
run kill -CONT "$pid"
i=0
while [ "$(members)" = "$before" ]; do
    i=$((i + 1))
    [ $i -lt 100 ] || fail "the daemon did not update the group in 10 s"
    sleep 0.1
done
mine=$(members)
note "the daemon's update: $mine"
sleep 2.5
run kill -STOP "$pid"

# dmstats goes on from its old look and writes its descriptor.
run dmsetup resume ext4
wait
note "dmstats: $(cat /tmp/held.out)"
note "dmstats' descriptor: $(members)"
stats_list ext4 | awk 'NR <= 1 || NR > 126' | cut -c1-200
run kill -CONT "$pid"
trap - EXIT

# The daemon deletes the regions it made that dmstats' descriptor left out,
# at its next list: each second for 5 s after an update that created
# regions, then every 30 s (the full check): the bound is waited for.
expect_group_by 35 ext4 held "$f"
alive "$pid" || fail "daemon exited"
