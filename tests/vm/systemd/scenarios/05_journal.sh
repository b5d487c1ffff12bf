# systemd-boot: 1
# The journal holds the daemon's lines, with their priorities: the line of
# the group made (info), and a warning (a member deleted behind its back).
u=$(unit_of "$F_EXT4")
dev=$(lv_dev "$F_EXT4")
a=$(basename "$F_EXT4")
journalctl -b -u "$u" -o cat | grep -q "Created new group" || fail "no 'Created new group' in the journal of $u: $(journalctl -b -u "$u" -o cat | tail -n 3 | tr '\n' '|')"
expect_group "$dev" "$a" "$F_EXT4"
set -- $(group_regions | sed -n 2p)
[ -n "${1:-}" ] || fail "the group has one member: nothing to delete"
run dmsetup message "$dev" 0 "@stats_delete $1"
expect_group "$dev" "$a" "$F_EXT4"
sleep 1
journalctl -b -u "$u" -o verbose --output-fields=PRIORITY,MESSAGE | grep -E 'PRIORITY|MESSAGE' | tail -n 8 | sed 's/^ */   /'
w=$(journalctl -b -u "$u" -p warning -o cat | grep -v '^$')
[ -n "$w" ] || fail "journalctl -p warning shows nothing of $u (the deletion of region $1 was logged at: $(journalctl -b -u "$u" -o json --output-fields=PRIORITY,MESSAGE | tail -n 1))"
note "journalctl -p warning: $(echo "$w" | tail -n 1)"
