# The kernel hands out the lowest free id: after a region below the group is
# deleted, the next region created for the group gets an id below the leader.
# The descriptor must move to it (C loses the group here).
run dmsetup message ext4 0 "@stats_create 0+8 /1 dmstats fixture"
f=/mnt/ext4/lower
make_fragmented "$f" 1
gid=$(start_filemap "$f") || exit 1
[ "$gid" -gt 0 ] || fail "group got id $gid, expected one above the fixture"
pid=$(one_daemon) || exit 1
expect_group ext4 lower "$f"
run dmsetup message ext4 0 "@stats_delete 0"
# One change, seen at once: a daemon that mapped the write before the punch
# would give id 0 to the whole new extent, then drop it for its two halves
# (created first, at higher ids), and no member would end below the leader.
kill -STOP "$pid"
write_mib "$f" 2 1
xfs_io -c "fpunch $((1048576 + 8192)) 4096" "$f"
kill -CONT "$pid"
expect_group ext4 lower "$f"
region_line ext4 0 | grep -qE 'DMS_GROUP="?lower"?:' || fail "region 0 is not the new leader: $(region_line ext4 0)"
old=$(region_line ext4 "$gid")
[ -z "$old" ] || echo "$old" | grep -q ' dmstats -$' || fail "old leader keeps more than its user data: $old"
run dmstats list --group
alive "$pid" || fail "daemon exited"
