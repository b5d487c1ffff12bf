# Freeing the file's first extent deletes the leader region: the descriptor
# must move to the new lowest member, not vanish with it (C loses the group).
f=/mnt/ext4/first
make_fragmented "$f" 1
write_mib "$f" 2 1
gid=$(start_filemap "$f") || exit 1
pid=$(one_daemon) || exit 1
expect_group ext4 first "$f"
first=$(file_extents "$f" | head -1)
note "leader $gid: $(region_line ext4 "$gid")"
# Block 0 was punched by make_fragmented; block 1 is the first extent.
run xfs_io -c "fpunch 4096 4096" "$f"
expect_group ext4 first "$f"
file_extents "$f" | grep -qx "$first" && fail "first extent $first still there (test is void)"
region_line ext4 "$gid" | grep -q DMS_GROUP && fail "region $gid still carries the descriptor"
# Several leading extents at once.
run xfs_io -c "fpunch 0 65536" "$f"
expect_group ext4 first "$f"
alive "$pid" || fail "daemon exited"
