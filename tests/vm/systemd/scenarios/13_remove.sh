# systemd-boot: 2
# vm-timeout: 180
# dpkg -r with an instance running: the package's prerm stops it while the
# binary is still there, so its group is deleted and nothing of ours is
# left; the binary and the unit file are gone, and systemd forgets the unit.
f=$F_EXT4
u=$(unit_of "$f")
dev=$(lv_dev "$f")
run systemctl start "$u"
pid=$(expect_active "$u") || exit 1
expect_group "$dev" "$(basename "$f")" "$f"
run dpkg -r dmfilemapd
alive "$pid" && fail "daemon $pid still running after dpkg -r"
[ "$(prop "$u" ActiveState)" = inactive ] || fail "$u is $(prop "$u" ActiveState) after dpkg -r"
group_exists "$dev" "$(basename "$f")" && fail "group still there: $(stats_list "$dev" | head -c 300)"
n=$(outside "$dev")
[ "$n" -eq 0 ] || fail "$n regions of ours left outside any group"
[ ! -e /usr/sbin/dmfilemapd ] || fail "/usr/sbin/dmfilemapd still there"
[ ! -e /usr/lib/systemd/system/dmfilemapd@.service ] || fail "the unit file is still there"
[ "$(prop "$u" LoadState)" = not-found ] || fail "$u: LoadState $(prop "$u" LoadState) after the removal"
note "dpkg -r with $u running: stopped by prerm (status $(prop "$u" ExecMainStatus)), no region left on $dev, unit $(prop "$u" LoadState)"
