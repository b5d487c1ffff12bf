# Deleting the group with dmstats ends the daemon.
f=/mnt/ext4/gd
make_fragmented "$f" 1
gid=$(start_filemap "$f") || exit 1
pid=$(one_daemon) || exit 1
expect_group ext4 gd "$f"
run dmstats delete --groupid "$gid" ext4
wait_exit "$pid" 13 || fail "daemon still running 13 s after its group was deleted (the check runs every 10 s)"
[ -z "$(stats_list ext4)" ] || fail "regions left: $(stats_list ext4 | head -3)"
