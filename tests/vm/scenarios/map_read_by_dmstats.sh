# A group made by `dmfilemapd map` is read by Debian 12's dmstats like its own:
# `list --group`, `report --group` (alias, options), `update_filemap` and
# `delete --groupid`.
f=/mnt/ext4/rd
make_fragmented "$f" 1
out=$(dmfilemapd map --alias vmdisk --precise --bounds 1ms,10ms "$f") || fail "map: $out"
gid=$(echo "$out" | sed -n 's/.*as group ID \([0-9]*\)\..*/\1/p')
pid=$(one_daemon) || exit 1
expect_group ext4 vmdisk "$f"
dmstats list --group ext4 > /tmp/l.out 2>&1 || fail "dmstats list --group: $(cat /tmp/l.out)"
cat /tmp/l.out
grep -q vmdisk /tmp/l.out || fail "dmstats list --group does not show the alias"
dmstats report --group -o group_id,stats_name,precise,hist_bounds --noheadings ext4 > /tmp/r.out 2>&1 \
    || fail "dmstats report --group: $(cat /tmp/r.out)"
cat /tmp/r.out
grep -Eq "^ *$gid[: ] *vmdisk[: ] *1[: ].*1ms,10ms" /tmp/r.out \
    || fail "report does not show group $gid as vmdisk, precise, with its bounds"
# dmstats updates it (our daemon stopped first, so that only dmstats moves
# it); the regions it adds carry the group's options (Debian 12's dmstats
# copies the bounds with the open-ended last bin as one more bound, 2^64-1,
# as it does for a group of its own).
kill_daemons
write_mib "$f" 1 1
xfs_io -c "fpunch $((1048576 + 8192)) 4096" "$f"
out=$(dmstats update_filemap --nomonitor --groupid "$gid" "$f" 2>&1) || fail "update_filemap: $out"
note "$out"
expect_group ext4 vmdisk "$f"
bad=$(stats_list ext4 | grep -v ' precise_timestamps histogram:1000000,10000000\(,18446744073709551615\)\?$' | head -3)
[ -z "$bad" ] || fail "regions without the group's options: $bad"
# And deletes it.
run dmstats delete --groupid "$gid" ext4
[ -z "$(stats_list ext4)" ] || fail "regions left: $(stats_list ext4 | head -3)"
