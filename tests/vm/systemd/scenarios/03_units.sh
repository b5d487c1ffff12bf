# systemd-boot: 1
# vm-timeout: 300
# One file on the ext4 LV, one on the xfs LV, each kept by the unit:
# systemctl enable --now; the group tiles the file, through growth and
# shrink.
for f in "$F_EXT4" "$F_XFS"; do
    make_fragmented "$f" 1
    write_mib "$f" 2 1
    u=$(unit_of "$f")
    run systemctl enable --now "$u"
    pid=$(expect_active "$u") || exit 1
    dev=$(lv_dev "$f")
    a=$(basename "$f")
    expect_group "$dev" "$a" "$f"
    for mib in 3 5; do
        write_mib "$f" 2 "$mib"
        expect_group "$dev" "$a" "$f"
    done
    for size in 4M 1M 100K; do
        run truncate -s "$size" "$f"
        expect_group "$dev" "$a" "$f"
    done
    make_fragmented "$f" 1
    write_mib "$f" 3 1
    expect_group "$dev" "$a" "$f"
    [ "$(prop "$u" MainPID)" = "$pid" ] || fail "$u: daemon $pid replaced by $(prop "$u" MainPID)"
    note "$u: pid $pid, $(cat /tmp/cg.nregions) regions"
done
