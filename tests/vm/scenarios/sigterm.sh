# SIGTERM: the daemon finishes what it is doing, exits 0, the group consistent.
f=/mnt/ext4/sig
make_fragmented "$f" 1
gid=$(map "$f" --nomonitor) || exit 1
exec 5< "$f"
dmfilemapd 5 "$gid" "$f" inode 1 0 &
dpid=$!
exec 5<&-
expect_group ext4 sig "$f"
write_mib "$f" 2 1
fragment "$f" 3
sleep 0.3
kill -TERM "$dpid"
t0=$(awk '{print $1}' /proc/uptime)
wait "$dpid"
rc=$?
note "exit status $rc, $(awk -v t="$t0" '{printf "%.2f", $1 - t}' /proc/uptime) s after SIGTERM"
[ "$rc" -eq 0 ] || fail "exit status $rc after SIGTERM"
check_consistent ext4 sig > /tmp/why || fail "group inconsistent after SIGTERM: $(cat /tmp/why)"
