# vm-timeout: 200
# `dmfilemapd unmap`: the group goes, every member and its descriptor; the
# daemon following it exits; other regions stay; a file with two groups, or
# none, is refused with one line.
f=/mnt/ext4/um
make_fragmented "$f" 1

# By file, a group made by map (128 extents: four steps of deletes).
dmfilemapd map "$f" > /dev/null || fail "map"
pid=$(one_daemon) || exit 1
expect_group ext4 um "$f"
# Another program's region, above the group (Debian 12's dmstats cannot
# make a group above another program's regions).
run dmsetup message ext4 0 "@stats_create 0+8 /1 other keep\\ me"
other=$(other_regions ext4)
run dmfilemapd unmap "$f"
[ -z "$(stats_list ext4 | grep -v ' other ')" ] || fail "regions left: $(stats_list ext4 | head -3)"
wait_exit "$pid" 13 || fail "daemon still running 13 s after unmap"
[ "$(other_regions ext4)" = "$other" ] || fail "other program's region changed: $(other_regions ext4)"

# By file, a group made by dmstats (which started the daemon).
gid=$(start_filemap "$f") || exit 1
pid=$(one_daemon) || exit 1
expect_group ext4 um "$f"
run dmfilemapd unmap "$f"
wait_exit "$pid" 13 || fail "daemon still running 13 s after unmap"
[ -z "$(stats_list ext4 | grep -v ' other ')" ] || fail "regions left: $(stats_list ext4 | head -3)"

# By --group, naming the device, then a file on it.
gid=$(start_filemap "$f") || exit 1
pid=$(one_daemon) || exit 1
run dmfilemapd unmap --group "$gid" /dev/mapper/ext4
wait_exit "$pid" 13 || fail "daemon still running 13 s after unmap --group"
gid=$(start_filemap --alias second "$f") || exit 1
pid=$(one_daemon) || exit 1
run dmfilemapd unmap --group "$gid" /mnt/ext4
wait_exit "$pid" 13 || fail "daemon still running 13 s after unmap --group"
[ -z "$(stats_list ext4 | grep -v ' other ')" ] || fail "regions left: $(stats_list ext4 | head -3)"

[ "$(other_regions ext4)" = "$other" ] || fail "other program's region changed: $(other_regions ext4)"
# Debian 12's dmstats cannot group regions above another program's.
run dmsetup message ext4 0 "@stats_delete 128"

# Two groups of the same file: unmap FILE will not choose.
a=$(map "$f" --nomonitor) || exit 1
b=$(map "$f" --nomonitor --alias twin) || exit 1
before=$(stats_list ext4)
refuse "unmap of a file with two groups" "dmfilemapd unmap $f"
grep -q "$a" /tmp/r.err && grep -q "$b" /tmp/r.err || fail "the refusal does not name groups $a and $b"
[ "$(stats_list ext4)" = "$before" ] || fail "a refused unmap changed the regions"
run dmfilemapd unmap --group "$b" "$f"
run dmfilemapd unmap "$f"
[ -z "$(stats_list ext4 | grep -v ' other ')" ] || fail "regions left: $(stats_list ext4 | head -3)"

# No group: refused.
refuse "unmap of a file without a group" "dmfilemapd unmap $f"
refuse "unmap of a group id that is not a group" "dmfilemapd unmap --group 0 /dev/mapper/ext4"

# A group whose file grew while no daemon followed it matches no more.
gid=$(map "$f" --nomonitor) || exit 1
write_mib "$f" 1 4
refuse "unmap of a file whose group is stale" "dmfilemapd unmap $f"
run dmfilemapd unmap --group "$gid" "$f"
refusals_done
