# systemd-boot: 2
# vm-timeout: 180
# systemctl stop: the daemon ends with status 0, the group is gone, nothing
# of ours is left on the device.
f=$F_EXT4
u=$(unit_of "$f")
dev=$(lv_dev "$f")
pid=$(expect_active "$u") || exit 1
run systemctl stop "$u"
wait_inactive "$u"
alive "$pid" && fail "daemon $pid still running"
[ "$(prop "$u" ExecMainStatus)" = 0 ] || fail "exit status $(prop "$u" ExecMainStatus), result $(prop "$u" Result)"
[ "$(prop "$u" Result)" = success ] || fail "result $(prop "$u" Result)"
group_exists "$dev" "$(basename "$f")" && fail "group still there: $(stats_list "$dev" | head -c 300)"
n=$(outside "$dev")
[ "$n" -eq 0 ] || fail "$n regions of ours left outside any group"
[ -z "$(stats_list "$dev")" ] || fail "regions left on $dev: $(stats_list "$dev" | head -c 300)"
note "$u stopped: status 0, no region left on $dev"
