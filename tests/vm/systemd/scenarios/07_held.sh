# systemd-boot: 1
# vm-timeout: 240
# A file unlinked while another process (a VM, say) still holds it: the
# unit's daemon follows it until the last holder closes it. That needs
# CAP_SYS_PTRACE in the unit (reading other processes' /proc/PID/fd): the
# same with a drop-in that takes it away ends at the unlink. Then what the
# unit leaves once the file is gone: ExecStopPost's unmap cannot find the
# file, so the group stays, unfollowed (unmap --group ID removes it).
dev=$(lv_dev /srv/ext4/x)
dev_path=/srv/ext4
for cap in with without; do
    f=/srv/ext4/held-$cap.img
    u=$(unit_of "$f")
    write_mib "$f" 2
    if [ $cap = without ]; then
        mkdir -p "/run/systemd/system/$u.d"
        printf '[Service]\nCapabilityBoundingSet=\nCapabilityBoundingSet=CAP_SYS_ADMIN CAP_DAC_READ_SEARCH\n' > "/run/systemd/system/$u.d/noptrace.conf"
        run systemctl daemon-reload
    fi
    run systemctl start "$u"
    pid=$(expect_active "$u") || exit 1
    expect_group "$dev" "$(basename "$f")" "$f"
    gid=$(sed -n "s/^\([0-9]*\): .*DMS_GROUP=\"\{0,1\}$(basename "$f")\"\{0,1\}:.*/\1/p" /tmp/cg.list | head -n 1)
    sleep 600 < "$f" &
    holder=$!
    run rm "$f"
    sleep 3
    if [ $cap = with ]; then
        [ "$(prop "$u" ActiveState)" = active ] && alive "$pid" || fail "$u ended at the unlink though $holder holds the file: $(journalctl -b -u "$u" -o cat | tail -n 3 | tr '\n' '|')"
        kill $holder
        wait $holder 2> /dev/null
        wait_inactive "$u"
        [ "$(prop "$u" Result)" = success ] || fail "$u: result $(prop "$u" Result) after the last holder closed the file"
        note "with CAP_SYS_PTRACE: followed while held, ended with status 0 when the holder closed it"
    else
        wait_inactive "$u"
        note "without CAP_SYS_PTRACE: ended at the unlink though $holder held the file (result $(prop "$u" Result))"
        kill $holder
        wait $holder 2> /dev/null
        rm -rf "/run/systemd/system/$u.d"
        systemctl daemon-reload
    fi
    if group_exists "$dev" "$(basename "$f")"; then
        note "group $gid left on $dev once the file is gone (ExecStopPost's unmap finds no file); unmap --group deletes it"
        run dmfilemapd unmap --group "$gid" "$dev_path"
    fi
    [ "$(outside "$dev")" -eq 0 ] || fail "regions of ours left outside any group"
done
