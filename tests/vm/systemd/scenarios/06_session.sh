# systemd-boot: 1
# vm-timeout: 180
# A group started from a login session (systemd-run --scope, as logind puts
# one): Debian 12's dmstats create --filemap, Debian 13's dmfilemapd map
# (its dmstats starts no daemon). Then the scope is stopped, as at logout
# with KillUserProcesses=yes: does the daemon go on, or end leaving
# nothing stranded? Either passes; which one is printed.
f=/srv/ext4/session.log
dev=$(lv_dev "$f")
write_mib "$f" 2
if [ "$VM_RELEASE" = 12 ]; then
    run systemd-run --quiet --scope --unit=dmtest-session dmstats create --filemap "$f"
else
    run systemd-run --quiet --scope --unit=dmtest-session dmfilemapd map "$f"
fi
# The launcher has exited when systemd-run returns, but its detached copy
# may not be found yet: until it names itself it is "exe" (it re-executes
# /proc/self/exe), which pidof does not match. So poll, as one_daemon does.
i=0
while :; do
    pid=$(for p in $(daemon_pids); do grep -q "$f" "/proc/$p/cmdline" 2> /dev/null && echo "$p"; done | head -n 1)
    [ -z "$pid" ] || break
    [ $i -lt 50 ] || fail "no daemon for $f after 5 s"
    sleep 0.1
    i=$((i + 1))
done
cg=$(cat "/proc/$pid/cgroup")
case $cg in *dmtest-session.scope*) ;; *) fail "daemon $pid is in $cg, not the session's scope" ;; esac
expect_group "$dev" session.log "$f"
run systemctl stop dmtest-session.scope
sleep 2
if alive "$pid"; then
    write_mib "$f" 1 2
    expect_group "$dev" session.log "$f"
    note "Debian $VM_RELEASE: the scope stopped, the daemon $pid goes on following"
else
    n=$(outside "$dev")
    [ "$n" -eq 0 ] || fail "the daemon ended with the scope and left $n regions outside any group"
    if group_exists "$dev" session.log; then
        check_consistent "$dev" session.log > /tmp/s.why || fail "group left inconsistent: $(cat /tmp/s.why)"
        write_mib "$f" 1 2
        sleep 2
        check_group "$dev" session.log "$f" > /dev/null && left="still tiles the file" || left="no longer followed: it misses the growth"
        note "Debian $VM_RELEASE: the scope stopped, the daemon ended (SIGTERM) and left the group whole, no region outside it; the group $left"
    else
        note "Debian $VM_RELEASE: the scope stopped, the daemon ended and the group is gone"
    fi
fi
journalctl -b -o cat _PID="$pid" | tail -n 3 | sed 's/^/   journal: /'
dmfilemapd unmap "$f" > /dev/null 2>&1
kill_daemons
