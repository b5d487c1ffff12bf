# SIGTERM in the middle of a long update (thousands of regions to create):
# the daemon exits soon, the group consistent (descriptor names only existing
# regions, none of ours outside it).
f=/mnt/ext4/sl
write_mib "$f" 16
gid=$(map "$f" --nomonitor) || exit 1
exec 5< "$f"
dmfilemapd 5 "$gid" "$f" inode 1 0 &
dpid=$!
exec 5<&-
expect_group ext4 sl "$f"
fragment "$f" 16
sleep 0.5
n0=$(stats_list ext4 | grep -c .)
kill -TERM "$dpid"
t0=$(awk '{print $1}' /proc/uptime)
wait "$dpid"
rc=$?
took=$(awk -v t="$t0" '{printf "%.2f", $1 - t}' /proc/uptime)
note "exit status $rc, $took s after SIGTERM; $n0 regions when signalled, $(stats_list ext4 | grep -c .) after; file has $(file_extents "$f" | wc -l) extents"
[ "$rc" -eq 0 ] || fail "exit status $rc after SIGTERM"
check_consistent ext4 sl > /tmp/why || fail "group inconsistent after SIGTERM: $(cat /tmp/why)"
