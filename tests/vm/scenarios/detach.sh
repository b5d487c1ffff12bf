# The forked daemon: its own session (setsid in the child), cwd /, stdio on /dev/null at verbose 0,
# no fd kept from its caller but the monitored file. Idle, it uses no CPU
# (measured, not asserted).
f=/mnt/xfs/dt
make_fragmented "$f" 1
exec 7< /mnt/xfs
gid=$(start_filemap "$f") || exit 1
exec 7<&-
pid=$(one_daemon) || exit 1
expect_group xfs dt "$f"
ls -l "/proc/$pid/fd"
read -r stat < "/proc/$pid/stat"
set -- $stat
[ "$6" = "$pid" ] || fail "the daemon does not lead its own session (session $6)"
[ "$(readlink "/proc/$pid/cwd")" = / ] || fail "cwd is $(readlink "/proc/$pid/cwd")"
for n in 0 1 2; do
    t=$(readlink "/proc/$pid/fd/$n")
    [ "$t" = /dev/null ] || fail "fd $n is $t, not /dev/null"
done
files=$(for l in /proc/$pid/fd/*; do readlink "$l"; done | grep '^/mnt/' | sort -u)
[ "$files" = "$f" ] || fail "open files: $(echo $files)"
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
t0=$(ticks "$pid")
sleep 5
t1=$(ticks "$pid")
note "idle CPU over 5 s: $((t1 - t0)) ticks"
alive "$pid" || fail "daemon exited"
