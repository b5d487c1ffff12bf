# A group made by `dmfilemapd map` is read by the guest's dmstats like its own:
# `list --group`, `report --group` (alias, options), `update_filemap` and
# `delete --groupid`. map writes the quoted descriptor here (`--dialect quoted`, `DMS_GROUP="vmdisk":`):
# Debian 13's dmstats shows the alias as written, Debian 12's with its quotes
# ("vmdisk", as measured in the dialects table); both keep the descriptor's
# bytes through update_filemap.
f=/mnt/ext4/rd
make_fragmented "$f" 1
out=$(dmfilemapd map --dialect quoted --alias vmdisk --precise --bounds 1ms,10ms "$f") || fail "map: $out"
gid=$(echo "$out" | sed -n 's/.*as group ID \([0-9]*\)\..*/\1/p')
pid=$(one_daemon) || exit 1
expect_group ext4 vmdisk "$f"
stats_list ext4 | grep -q ' DMS_GROUP="vmdisk":' || fail "no quoted descriptor: $(stats_list ext4 | grep DMS_GROUP)"
case $VM_RELEASE in
    12) shown='"vmdisk"' ;;
    *) shown=vmdisk ;;
esac
dmstats list --group ext4 > /tmp/l.out 2>&1 || fail "dmstats list --group: $(cat /tmp/l.out)"
cat /tmp/l.out
grep -Eq "(^|[[:space:]])$shown([[:space:]]|\$)" /tmp/l.out || fail "dmstats list --group does not show the alias as $shown"
dmstats report --group -o group_id,stats_name,precise,hist_bounds --noheadings ext4 > /tmp/r.out 2>&1 \
    || fail "dmstats report --group: $(cat /tmp/r.out)"
cat /tmp/r.out
grep -Eq "^ *$gid[: ] *$shown[: ] *1[: ].*1ms,10ms" /tmp/r.out \
    || fail "report does not show group $gid as $shown, precise, with its bounds"
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
stats_list ext4 | grep -q ' DMS_GROUP="vmdisk":' \
    || fail "update_filemap did not keep the descriptor: $(stats_list ext4 | grep DMS_GROUP)"
bad=$(stats_list ext4 | grep -v ' precise_timestamps histogram:1000000,10000000\(,18446744073709551615\)\?$' | head -3)
[ -z "$bad" ] || fail "regions without the group's options: $bad"
# And deletes it.
run dmstats delete --groupid "$gid" ext4
[ -z "$(stats_list ext4)" ] || fail "regions left: $(stats_list ext4 | head -3)"
