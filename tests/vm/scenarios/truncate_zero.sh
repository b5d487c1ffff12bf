# A file truncated to nothing has no extents: its regions go, the daemon exits
# (C leaves stale regions behind).
f=/mnt/ext4/tz
make_fragmented "$f" 1
start_filemap "$f" > /dev/null
pid=$(one_daemon) || exit 1
expect_group ext4 tz "$f"
run truncate -s 0 "$f"
wait_exit "$pid" 13 || fail "daemon still running 13 s after truncate to 0"
left=$(stats_list ext4)
[ -z "$left" ] || fail "regions left after truncate to 0: $(echo "$left" | head -3 | tr '\n' ';')"
