# vm-timeout: 180
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
# A dmstats that listed before an update of the daemon's and wrote after it
# leaves the daemon's new regions out (race_held_update); the daemon finds
# them at its next list: within a second or so after its update, or at the
# full check (30 s) when dmstats wrote later than that (a loaded machine).
expect_group_by 35 ext4 ru "$f"
sleep 1
expect_group ext4 ru "$f"
alive "$pid" || note "daemon exited during the race"
