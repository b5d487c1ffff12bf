# The harness itself: dm devices, dm-stats, filefrag and a filemap group made
# by dmstats without a daemon (--nomonitor), on both file systems.
run dmsetup version
for fs in ext4 xfs; do
    f=/mnt/$fs/basic
    write_mib "$f" 8
    fragment "$f" 1
    gid=$(map "$f" --nomonitor) || exit 1
    note "$fs: group $gid"
    stats_list "$fs"
    check_group "$fs" basic "$f" || fail "fresh group does not match the file on $fs"
    run dmstats list --group
    run dmstats report
    run dmstats delete --groupid "$gid" "$fs"
    [ -z "$(stats_list "$fs")" ] || fail "regions left after delete on $fs"
done

# The checker must see a mismatch when nothing keeps the group up to date.
f=/mnt/ext4/stale
write_mib "$f" 2
fragment "$f" 1
map "$f" --nomonitor > /dev/null
check_group ext4 stale "$f" || fail "fresh group does not match"
write_mib "$f" 4 2
if check_group ext4 stale "$f" > /tmp/why; then fail "checker missed a grown file"; fi
note "checker saw: $(cat /tmp/why)"
