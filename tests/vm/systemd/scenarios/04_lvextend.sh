# systemd-boot: 1
# vm-timeout: 300
# lvextend -r -L +256M (the table reloaded, the file system grown) while the
# file grows: the daemon goes on, the group tiles the file after.
for f in "$F_EXT4" "$F_XFS"; do
    u=$(unit_of "$f")
    dev=$(lv_dev "$f")
    pid=$(expect_active "$u") || exit 1
    before=$(lvs --noheadings --units m -o lv_size "$VG/${dev#"$VG"-}" | tr -d ' ')
    fs_before=$(df -m --output=size "$(dirname "$f")" | tail -n 1 | tr -d ' ')
    (
        i=0
        while [ $i -lt 12 ]; do
            dd if=/dev/urandom of="$f" bs=256K count=1 seek=$((16 + i)) conv=notrunc 2> /dev/null
            sleep 0.2
            i=$((i + 1))
        done
    ) &
    writer=$!
    run lvextend -q -r -L +256M "$VG/${dev#"$VG"-}"
    wait $writer
    sync
    after=$(lvs --noheadings --units m -o lv_size "$VG/${dev#"$VG"-}" | tr -d ' ')
    fs_after=$(df -m --output=size "$(dirname "$f")" | tail -n 1 | tr -d ' ')
    [ "$fs_after" -gt "$fs_before" ] || fail "$(dirname "$f") not grown: $fs_before MiB, now $fs_after MiB"
    expect_group "$dev" "$(basename "$f")" "$f"
    [ "$(prop "$u" MainPID)" = "$pid" ] && alive "$pid" || fail "$u: the daemon did not live through lvextend"
    note "$dev: LV $before -> $after, file system $fs_before -> $fs_after MiB, file $(stat -c %s "$f") bytes, $(cat /tmp/cg.nregions) regions"
done
