# path mode: when the path goes away for good, the daemon exits.
f=/mnt/ext4/prm
make_fragmented "$f" 1
start_filemap --follow path "$f" > /dev/null
pid=$(one_daemon) || exit 1
expect_group ext4 prm "$f"
run rm "$f"
wait_exit "$pid" 13 || fail "daemon still running 13 s after the path was removed"
