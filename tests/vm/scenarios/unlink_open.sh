# An unlinked file still open elsewhere is still in use: the daemon keeps
# running until the last other holder closes it, then exits (C exits at once).
f=/mnt/ext4/unl
make_fragmented "$f" 1
start_filemap "$f" > /dev/null
pid=$(one_daemon) || exit 1
expect_group ext4 unl "$f"
sh -c 'exec 3< "$1"; exec sleep 1000' holder "$f" &
holder=$!
# Only once it holds the file (a fixed pause lost the race under load).
i=0
until [ "$(readlink "/proc/$holder/fd/3" 2> /dev/null)" = "$f" ]; do
    [ $i -ge 50 ] && fail "the holder did not open $f"
    sleep 0.1
    i=$((i + 1))
done
run rm "$f"
expect_alive "$pid" 3
note "daemon $pid alive with the file unlinked and held by $holder"
kill "$holder"
wait "$holder" 2> /dev/null
wait_exit "$pid" 13 || fail "daemon still running 13 s after the last holder closed the file"
