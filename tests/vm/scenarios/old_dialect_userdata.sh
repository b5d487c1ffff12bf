# The lvm2 <= 2.03.22 dialect (Debian 12's) with user data: written back in the
# same dialect, alias and user data unchanged.
f=/mnt/xfs/od
make_fragmented "$f" 1
gid=$(start_filemap "$f") || exit 1
pid=$(one_daemon) || exit 1
expect_group xfs od "$f"
members=$(group_members)
run dmsetup message xfs 0 @stats_set_aux "$gid" "DMS_GROUP=od:$members#user\\ data\\ here"
region_line xfs "$gid" | grep -q " dmstats DMS_GROUP=od:$members#user data here\$" \
    || fail "fixture aux not as written: $(region_line xfs "$gid")"
write_mib "$f" 2 1
xfs_io -c "fpunch $((1048576 + 4096)) 4096" "$f"
expect_group xfs od "$f"
members=$(group_members)
leader=$(echo "$members" | sed 's/[-,].*//')
line=$(region_line xfs "$leader")
case $line in
    *" dmstats DMS_GROUP=od:$members#user data here") ;;
    *) fail "descriptor changed: $line" ;;
esac
alive "$pid" || fail "daemon exited"
