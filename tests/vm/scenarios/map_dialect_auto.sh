# vm-timeout: 120
# `dmfilemapd map` (`--dialect auto`, the default) writes the descriptor in
# the form the system's dmstats reads back: bare (`DMS_GROUP=name:`) where
# libdevmapper is older than 1.02.197 (Debian 12), so that dmstats lists and
# reports the alias without quotes and keeps it through update_filemap;
# quoted where a newer one is installed (Debian 13; the guest also holds
# Debian 12's). `--dialect` overrides either way.
f=/mnt/ext4/auto.img
make_fragmented "$f" 1
case $VM_RELEASE in
    12) want=' DMS_GROUP=auto.img:' other=' DMS_GROUP="auto.img":' other_opt=quoted ;;
    *) want=' DMS_GROUP="auto.img":' other=' DMS_GROUP=auto.img:' other_opt=bare ;;
esac
# To files: at verbose 1 the detached daemon keeps its stdout and stderr.
dmfilemapd map --verbose 1 "$f" > /tmp/auto.out 2>&1 || fail "map: $(cat /tmp/auto.out)"
out=$(cat /tmp/auto.out)
note "$out"
gid=$(echo "$out" | sed -n 's/.*as group ID \([0-9]*\)\..*/\1/p')
[ -n "$gid" ] || fail "no group id in: $out"
pid=$(one_daemon) || exit 1
expect_group ext4 auto.img "$f"
stats_list ext4 | grep -qF -- "$want" || fail "auto: not $want: $(stats_list ext4 | grep DMS_GROUP)"
dmstats report --group -o group_id,stats_name --noheadings ext4 > /tmp/r.out 2>&1 \
    || fail "dmstats report --group: $(cat /tmp/r.out)"
cat /tmp/r.out
grep -Eq "^ *$gid[: ] *auto\.img([: ]|\$)" /tmp/r.out || fail "report does not show group $gid as auto.img"
if [ "$VM_RELEASE" = 12 ]; then
    # Debian 12's dmstats updates it and keeps the bare descriptor.
    kill_daemons
    write_mib "$f" 1 1
    out=$(dmstats update_filemap --nomonitor --groupid "$gid" "$f" 2>&1) || fail "update_filemap: $out"
    expect_group ext4 auto.img "$f"
    stats_list ext4 | grep -qF -- "$want" || fail "update_filemap changed it: $(stats_list ext4 | grep DMS_GROUP)"
fi
run dmfilemapd unmap "$f"
kill_daemons
[ -z "$(stats_list ext4)" ] || fail "unmap left regions: $(stats_list ext4 | head -3)"
# The option overrides the system.
out=$(dmfilemapd map --dialect "$other_opt" "$f" 2>&1) || fail "map --dialect $other_opt: $out"
pid=$(one_daemon) || exit 1
stats_list ext4 | grep -qF -- "$other" || fail "--dialect $other_opt: not $other: $(stats_list ext4 | grep DMS_GROUP)"
run dmfilemapd unmap "$f"
