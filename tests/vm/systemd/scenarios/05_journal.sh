# systemd-boot: 1
# vm-timeout: 180
# The journal holds the daemon's lines, with their priorities: the line of
# the group made (info), and a warning (a member deleted behind its back).
# The file does not change: the idle check's member probe (each member once
# a minute, src/daemon.rs MEMBER_ROUND) must notice the deletion, within 70 s.
u=$(unit_of "$F_EXT4")
dev=$(lv_dev "$F_EXT4")
a=$(basename "$F_EXT4")
journalctl -b -u "$u" -o cat | grep -q "Created new group" || fail "no 'Created new group' in the journal of $u: $(journalctl -b -u "$u" -o cat | tail -n 3 | tr '\n' '|')"
expect_group "$dev" "$a" "$F_EXT4"
# A member, not the leader: the lowest id holds the descriptor, and deleting
# it deletes the group. By id, not by start: after the shrinks and regrowth
# of 03 the leader need not hold the first extent (seen on Debian 12: the
# second region by start was the leader, and the group went with it).
set -- $(sort -n /tmp/cg.regions | sed -n 2p)
[ -n "${1:-}" ] || fail "the group has one member: nothing to delete"
run dmsetup message "$dev" 0 "@stats_delete $1"
t0=$(ks_now_ms)
expect_group_by 90 "$dev" "$a" "$F_EXT4"
note "member $1 deleted behind the daemon's back: made again after $((($(ks_now_ms) - t0) / 1000)) s (bound 70 s)"
sleep 1
journalctl -b -u "$u" -o verbose --output-fields=PRIORITY,MESSAGE | grep -E 'PRIORITY|MESSAGE' | tail -n 8 | sed 's/^ */   /'
w=$(journalctl -b -u "$u" -p warning -o cat | grep -v '^$')
# The daemon's stderr is a journal stream: a line reaches journald at the
# unit's SyslogLevel (info) unless it starts with its own "<4>" (sd-daemon(3)).
[ -n "$w" ] || fail "journalctl -p warning shows nothing of $u: its warning is at $(journalctl -b -u "$u" -o verbose --output-fields=PRIORITY,MESSAGE | grep -B1 'deleted by someone else' | sed -n 's/^ *PRIORITY=/PRIORITY=/p' | tail -n 1), as every stderr line without a <4> prefix"
note "journalctl -p warning: $(echo "$w" | tail -n 1)"
