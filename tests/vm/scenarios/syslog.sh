# Syslog: the detached daemon at verbose 0 (stdio on /dev/null) sends its
# warnings and errors to /dev/log, facility daemon, tagged dmfilemapd[PID];
# where there is no /dev/log (an initramfs, as here before syslogd starts) it
# sends nothing and works as ever; at verbose >= 1 it keeps stdout/stderr.
LOG=/tmp/syslog.log
limit=/proc/sys/fs/inotify/max_user_instances
# cat, not read: busybox reads a byte at a time and a sysctl file answers
# only its first byte at offset 0 ("1" of "128"), which cleanup then wrote back.
instances=$(cat "$limit")
cleanup() {
    echo "$instances" > "$limit"
    [ -n "${slpid:-}" ] && kill "$slpid" 2> /dev/null
    rm -f /dev/log
}
trap cleanup EXIT

# expect_log PATTERN: a line of the log matches (grep -E) within 3 s.
expect_log() {
    local i
    i=0
    until grep -qE "$1" "$LOG" 2> /dev/null; do
        [ $i -ge 30 ] && fail "no log line like '$1'; log: $(tail -n 5 "$LOG" 2> /dev/null | tr '\n' '|')"
        sleep 0.1
        i=$((i + 1))
    done
    note "logged: $(grep -E "$1" "$LOG" | tail -n 1 | sed 's/^.*daemon\./daemon./')"
}

# 1. No /dev/log: the warnings at exit go nowhere, and nothing fails.
[ -e /dev/log ] && fail "/dev/log exists before syslogd was started"
f=/mnt/ext4/nolog
make_fragmented "$f" 1
map "$f" --follow path > /dev/null
pid=$(one_daemon) || exit 1
expect_group ext4 nolog "$f"
run rm "$f"
wait_exit "$pid" 13 || fail "daemon still running 13 s after its path was removed"
check_consistent ext4 nolog > /tmp/why || fail "group left inconsistent: $(cat /tmp/why)"
# Debian 12's dmstats cannot map a file beside a group whose file is gone.
run dmstats delete --allregions ext4

syslogd -n -O "$LOG" &
slpid=$!
i=0
until [ -S /dev/log ]; do
    [ $i -ge 30 ] && fail "syslogd made no /dev/log"
    sleep 0.1
    i=$((i + 1))
done

# 2. Its file system unmounted and its device removed under it: the daemon
# (path mode, which holds the file only while it looks at it) warns and exits.
run make_dev sl ext4 64
f=/mnt/sl/data
make_fragmented "$f" 1
map "$f" --follow path > /dev/null
pid=$(one_daemon) || exit 1
expect_group sl data "$f"
i=0
until umount /mnt/sl 2> /dev/null; do
    [ $i -ge 20 ] && fail "cannot unmount /mnt/sl"
    sleep 0.1
    i=$((i + 1))
done
loopdev=$(dmsetup deps -o devname sl | sed -n 's/.*(\(loop[0-9]*\)).*/\1/p')
run dmsetup remove --force sl
[ -n "$loopdev" ] && losetup -d "/dev/$loopdev"
wait_exit "$pid" 13 || fail "daemon still running 13 s after its device was removed"
expect_log " daemon\.warn(ing)? dmfilemapd\[$pid\]: No regular file of this device at $f after 10 tries\.$"
expect_log " daemon\.warn(ing)? dmfilemapd\[$pid\]: File gone from its path: exiting\.$"

# 3. No inotify instance left to the user (fs.inotify.max_user_instances,
# 128 by default and shared by all the user's programs: one user's 129th
# daemon): the daemon warns once and looks at the file each second instead,
# follows a growth, and takes a watch again once an instance is free.
f=/mnt/xfs/noinotify
make_fragmented "$f" 1
echo 0 > "$limit"
map "$f" > /dev/null
pid=$(one_daemon) || exit 1
expect_log " daemon\.warn(ing)? dmfilemapd\[$pid\]: Cannot watch $f with inotify: .*\(os error 24\) \(fs\.inotify\.max_user_instances\); looking at it every 1 s instead\.$"
expect_group xfs noinotify "$f"
write_mib "$f" 1 2
expect_group xfs noinotify "$f"
write_mib "$f" 1 4
expect_group xfs noinotify "$f"
echo "$instances" > "$limit"
i=0
until ls -l "/proc/$pid/fd" 2> /dev/null | grep -q 'anon_inode:inotify'; do
    [ $i -ge 30 ] && fail "no inotify instance 3 s after the limit was raised"
    sleep 0.1
    i=$((i + 1))
done
write_mib "$f" 1 6
expect_group xfs noinotify "$f"
alive "$pid" || fail "daemon without inotify exited"
n=$(grep -c "dmfilemapd\[$pid\]: Cannot watch" "$LOG")
[ "$n" = 1 ] || fail "warned $n times, not once"
kill_daemons

# 4. At verbose 1 the detached daemon keeps the caller's stdout and stderr,
# as C's, and sends nothing to syslog.
f=/mnt/xfs/verbose
make_fragmented "$f" 1
gid=$(map "$f" --nomonitor) || exit 1
exec 5< "$f"
dmfilemapd 5 "$gid" "$f" path 0 1 > /tmp/v1.out 2>&1
exec 5<&-
pid=$(one_daemon) || exit 1
run rm "$f"
wait_exit "$pid" 13 || fail "verbose daemon still running 13 s after its path was removed"
grep -qx "File gone from its path: exiting." /tmp/v1.out \
    || fail "no exit line on its stderr: $(tr '\n' '|' < /tmp/v1.out | cut -c1-300)"
! grep -q "dmfilemapd\[$pid\]" "$LOG" || fail "verbose daemon logged to syslog: $(grep "dmfilemapd\[$pid\]" "$LOG")"
note "syslog holds $(grep -c 'dmfilemapd\[' "$LOG") line(s) of dmfilemapd"
