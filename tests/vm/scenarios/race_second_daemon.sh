# vm-timeout: 150
# A second daemon on the same group (started by hand, as update_filemap would):
# the two converge on the file's extents or one exits; never duplicate regions.
f=/mnt/xfs/r2
make_fragmented "$f" 1
gid=$(start_filemap "$f") || exit 1
pid=$(one_daemon) || exit 1
expect_group xfs r2 "$f"
exec 5< "$f"
dmfilemapd 5 "$gid" "$f" inode 1 2 > /tmp/second.log 2>&1 &
second=$!
exec 5<&-
for mib in 1 2 3 4; do
    write_mib "$f" 1 "$mib"
    xfs_io -c "fpunch $((mib * 1048576 + 8192)) 4096" "$f"
done
trap 'echo "--- second daemon:"; tail -n 30 /tmp/second.log' EXIT
expect_group xfs r2 "$f"
sleep 1
expect_group xfs r2 "$f"
# Each change wakes both daemons at once: each deletes and creates; rounds
# make a lost race likely, so a region it orphans shows up on most runs.
for round in 1 2 3 4 5 6 7 8 9 10; do
    run truncate -s 1500K "$f"
    sleep 0.6
    write_mib "$f" 1 2
    sleep 0.6
done
expect_group xfs r2 "$f"
note "first daemon $(alive "$pid" && echo running || echo exited), second $(alive "$second" && echo running || echo exited)"
kill "$second" 2> /dev/null || true  # it may have exited (the note says)
