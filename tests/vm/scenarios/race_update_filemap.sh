# dmstats update_filemap racing with the running daemon on the same group.
f=/mnt/ext4/ru
make_fragmented "$f" 1
gid=$(start_filemap "$f") || exit 1
pid=$(one_daemon) || exit 1
expect_group ext4 ru "$f"
for mib in 1 2 3; do
    write_mib "$f" 1 "$mib"
    xfs_io -c "fpunch $((mib * 1048576 + 8192)) 4096" "$f"
    out=$(dmstats update_filemap --nomonitor --groupid "$gid" "$f" 2>&1) || note "update_filemap: $out"
done
expect_group ext4 ru "$f"
sleep 1
expect_group ext4 ru "$f"
alive "$pid" || note "daemon exited during the race"
