# A region of another program on the same device is never touched.
f=/mnt/ext4/op
make_fragmented "$f" 1
start_filemap "$f" > /dev/null
pid=$(one_daemon) || exit 1
expect_group ext4 op "$f"
run dmsetup message ext4 0 "@stats_create 1000+100 /1 otherprog keep\\ this"
run dmsetup message ext4 0 "@stats_create 0+2097152 /100 otherprog2 -"
before=$(other_regions ext4)
echo "$before"
[ "$(echo "$before" | wc -l)" -eq 2 ] || fail "fixture regions missing"
write_mib "$f" 2 1
expect_group ext4 op "$f"
run xfs_io -c "fpunch 4096 4096" "$f"
expect_group ext4 op "$f"
run truncate -s 300K "$f"
expect_group ext4 op "$f"
after=$(other_regions ext4)
[ "$before" = "$after" ] || fail "other regions changed: $after"
alive "$pid" || fail "daemon exited"
