# systemd-boot: 2
# vm-timeout: 180
# systemctl kill -s KILL: the daemon dies mid-whatever; the unit's stop
# command (dmfilemapd unmap) then leaves no region of ours outside any group.
f=$F_XFS
u=$(unit_of "$f")
dev=$(lv_dev "$f")
pid=$(expect_active "$u") || exit 1
# Killed once the group has caught up with a growth: the stop command's
# `unmap FILE` finds the group that matches the file. (Killed in the middle
# of an update, the group lags the file, `unmap FILE` refuses it, and the
# group stays whole: seen once on Debian 12; docs/systemd.md.)
write_mib "$f" 4 8
expect_group "$dev" "$(basename "$f")" "$f"
run systemctl kill -s KILL "$u"
wait_inactive "$u"
alive "$pid" && fail "daemon $pid still running"
n=$(outside "$dev")
[ "$n" -eq 0 ] || fail "$n regions of ours left outside any group"
group_exists "$dev" "$(basename "$f")" && fail "group still there: $(stats_list "$dev" | head -c 300)"
note "$u killed: result $(prop "$u" Result), no region of ours left on $dev"
systemctl reset-failed "$u" 2> /dev/null
run systemctl disable "$(unit_of "$F_EXT4")" "$u"
