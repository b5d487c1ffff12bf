# The lvm2 >= 2.03.23 dialect, written by hand: the quoted alias (with a
# space) and the user data survive every update byte for byte.
f=/mnt/ext4/q
make_fragmented "$f" 1
gid=$(start_filemap "$f") || exit 1
pid=$(one_daemon) || exit 1
expect_group ext4 q "$f"
members=$(group_members)
run dmsetup message ext4 0 @stats_set_aux "$gid" "DMS_GROUP=\"my\\ alias\":$members#keep\\ me"
region_line ext4 "$gid"
region_line ext4 "$gid" | grep -q "^$gid: .* dmstats DMS_GROUP=\"my alias\":$members#keep me\$" \
    || fail "fixture aux not as written: $(region_line ext4 "$gid")"
for step in 1 2 3; do
    write_mib "$f" 1 "$step"
    xfs_io -c "fpunch $((step * 1048576 + 4096)) 4096" "$f"
    expect_group ext4 "my alias" "$f"
    members=$(group_members)
    leader=$(echo "$members" | sed 's/[-,].*//')
    line=$(region_line ext4 "$leader")
    expected="$leader: "
    case $line in
        *" dmstats DMS_GROUP=\"my alias\":$members#keep me") ;;
        *) fail "descriptor changed: $line" ;;
    esac
done
run truncate -s 1M "$f"
expect_group ext4 "my alias" "$f"
alive "$pid" || fail "daemon exited"
