# Another program deletes one of our member regions: the next update brings
# the group back to the file's extents, without duplicating regions.
f=/mnt/ext4/md
make_fragmented "$f" 1
gid=$(start_filemap "$f") || exit 1
pid=$(one_daemon) || exit 1
expect_group ext4 md "$f"
run dmsetup message ext4 0 "@stats_delete $((gid + 5))"
run dmsetup message ext4 0 "@stats_delete $((gid + 6))"
write_mib "$f" 1 1
expect_group ext4 md "$f"
# The leader itself, deleted behind the daemon's back: the group is gone.
run dmsetup message ext4 0 "@stats_delete $gid"
wait_exit "$pid" 13 || note "daemon still running after its leader was deleted"
alive "$pid" || note "daemon exited after its leader was deleted"
