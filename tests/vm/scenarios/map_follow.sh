# vm-timeout: 90
# The daemon `dmfilemapd map` starts follows the group, with each option, as
# when dmstats starts it.
f=/mnt/ext4/mb
make_fragmented "$f" 1
write_mib "$f" 1 1

# Relative path and a symbolic link: dmstats names the group after the target.
ln -s mb /mnt/ext4/link
cd /mnt/ext4
out=$(dmfilemapd map link) || fail "map link: $out"
[ "$out" = "link: Created new group with $(file_extents "$f" | grep -c .) region(s) as group ID 0." ] \
    || fail "map link printed: $out"
cd /
pid=$(one_daemon) || exit 1
expect_group ext4 mb "$f"
write_mib "$f" 1 3
expect_group ext4 mb "$f"
alive "$pid" || fail "daemon exited"
kill_daemons
dmfilemapd unmap "$f" || fail "unmap"

# An alias with a space: written quoted (Debian 12's dmstats would cut it).
dmfilemapd map --alias "my vm" "$f" > /dev/null || fail "map --alias 'my vm'"
pid=$(one_daemon) || exit 1
region_line ext4 0 | grep -q 'DMS_GROUP="my vm":' || fail "descriptor: $(region_line ext4 0)"
expect_group ext4 "my vm" "$f"
write_mib "$f" 1 5
expect_group ext4 "my vm" "$f"
kill_daemons
dmfilemapd unmap "$f" || fail "unmap"

# --follow path: a file renamed over the path joins the group.
dmfilemapd map --follow path "$f" > /dev/null || fail "map --follow path"
pid=$(one_daemon) || exit 1
expect_group ext4 mb "$f"
make_fragmented /mnt/ext4/mb.new 2
run mv /mnt/ext4/mb.new "$f"
expect_group ext4 mb "$f"
alive "$pid" || fail "path-mode daemon exited"
kill_daemons
dmfilemapd unmap "$f" || fail "unmap"

# --precise --bounds: the regions the daemon adds carry them too.
dmfilemapd map --precise --bounds 10us,1ms "$f" > /dev/null || fail "map --precise --bounds"
pid=$(one_daemon) || exit 1
write_mib "$f" 1 7
xfs_io -c "fpunch $((7 * 1048576 + 8192)) 4096" "$f"
expect_group ext4 mb "$f"
bad=$(stats_list ext4 | grep -v ' precise_timestamps histogram:10000,1000000$' | head -3)
[ -z "$bad" ] || fail "regions without the options: $bad"
kill_daemons
dmfilemapd unmap "$f" || fail "unmap"

# --foreground: the line, then the daemon in this process until SIGTERM.
dmfilemapd map --foreground "$f" > /tmp/fg.out 2> /tmp/fg.err &
fg=$!
sleep 1
expect_group ext4 mb "$f"
alive "$fg" || fail "foreground map exited: $(cat /tmp/fg.err)"
[ "$(daemon_pids)" = "$fg" ] || fail "daemons: $(daemon_pids | tr '\n' ' '), expected only $fg"
grep -q "^$f: Created new group with [0-9]* region(s) as group ID 0\.\$" /tmp/fg.out \
    || fail "foreground map printed: $(cat /tmp/fg.out)"
write_mib "$f" 1 9
expect_group ext4 mb "$f"
kill -TERM "$fg"
wait "$fg"
rc=$?
[ $rc -eq 0 ] || fail "foreground map exited $rc after SIGTERM: $(cat /tmp/fg.err)"
expect_group ext4 mb "$f"
dmfilemapd unmap "$f" || fail "unmap"

# --verbose 1: C's start line on stderr, the group line on stdout.
dmfilemapd map --verbose 1 "$f" > /tmp/v.out 2> /tmp/v.err || fail "map --verbose 1: $(cat /tmp/v.err)"
pid=$(one_daemon) || exit 1
grep -q "^Started dmfilemapd with pid=$pid\$" /tmp/v.err || fail "stderr: $(cat /tmp/v.err)"
grep -q "Created new group" /tmp/v.out || fail "stdout: $(cat /tmp/v.out)"
expect_group ext4 mb "$f"
