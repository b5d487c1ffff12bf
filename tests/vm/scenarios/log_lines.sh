# vm-timeout: 90
# C's key log lines, word for word, at verbose 1 in the foreground; and the
# "Started" line from the parent when forking at verbose 1.
f=/mnt/ext4/ll
start_fg() {
    gid=$(map "$f" --nomonitor) || exit 1
    exec 5< "$f"
    dmfilemapd 5 "$gid" "$f" inode 1 1 > /tmp/ll.out 2>&1 &
    dpid=$!
    exec 5<&-
    sleep 1
    grep -qx "Starting dmfilemapd with fd=5, group_id=$gid mode=inode, path=$f" /tmp/ll.out \
        || fail "no start line: $(head -3 /tmp/ll.out)"
}
want_line() {
    wait_exit "$dpid" 13 || fail "daemon did not exit (expected \"$1\")"
    grep -qx "$1" /tmp/ll.out || fail "no \"$1\" line: $(tr '\n' '|' < /tmp/ll.out | cut -c1-300)"
    note "saw \"$1\""
}
make_fragmented "$f" 1
start_fg
run dmstats delete --groupid "$gid" ext4
want_line "Filemap group removed: exiting."
start_fg
run truncate -s 0 "$f"
want_line "File contains no extents: exiting."
make_fragmented "$f" 1
start_fg
run rm "$f"
want_line "File unlinked and closed: exiting."
# Forking at verbose 1: the parent says where the daemon went.
make_fragmented "$f" 1
gid=$(map "$f" --nomonitor) || exit 1
exec 5< "$f"
# (into a file: at verbose 1 the daemon keeps its stdout, so a pipe never ends)
dmfilemapd 5 "$gid" "$f" inode 0 1 > /tmp/ll.start 2>&1
exec 5<&-
pid=$(one_daemon) || exit 1
cat /tmp/ll.start
grep -qx "Started dmfilemapd with pid=$pid" /tmp/ll.start || fail "no \"Started dmfilemapd with pid=$pid\" line"
