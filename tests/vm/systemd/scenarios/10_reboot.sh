# systemd-boot: 2
# vm-timeout: 300
# The second boot of the same disks: both units start after their mounts,
# make their groups again and follow them.
for f in "$F_EXT4" "$F_XFS"; do
    u=$(unit_of "$f")
    pid=$(expect_active "$u") || exit 1
    m=$(systemd-escape --path --suffix=mount "$(dirname "$f")")
    [ "$(prop "$m" ActiveState)" = active ] || fail "$m is $(prop "$m" ActiveState)"
    mt=$(prop "$m" ActiveEnterTimestampMonotonic)
    ut=$(prop "$u" InactiveExitTimestampMonotonic)
    [ "$ut" -gt "$mt" ] || fail "$u started at $ut us, before $m was mounted at $mt us"
    dev=$(lv_dev "$f")
    expect_group "$dev" "$(basename "$f")" "$f"
    write_mib "$f" 2 6
    expect_group "$dev" "$(basename "$f")" "$f"
    note "$u: started $(( (ut - mt) / 1000 )) ms after $m, pid $pid, $(cat /tmp/cg.nregions) regions"
done
journalctl --list-boots --no-pager | tail -n 2 | sed 's/^/   /'
