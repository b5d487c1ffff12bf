# vm-timeout: 240
# No fd or inotify instance leaks from cycle to cycle, in either mode (C leaks
# one inotify instance per cycle in path mode).
fdcount() { ls "/proc/$1/fd" | wc -l; }
for mode in path inode; do
    f=/mnt/ext4/fl$mode
    make_fragmented "$f" 1
    start_filemap --follow "$mode" "$f" > /dev/null
    pid=$(one_daemon) || exit 1
    expect_group ext4 "fl$mode" "$f"
    n1=$(fdcount "$pid")
    i=0
    while [ $i -lt 40 ]; do
        echo x >> "$f"
        sync
        sleep 0.3
        i=$((i + 1))
    done
    expect_group ext4 "fl$mode" "$f"
    n2=$(fdcount "$pid")
    note "$mode: $n1 fds after the first cycle, $n2 after 40 more"
    ls -l "/proc/$pid/fd"
    [ "$n1" -eq "$n2" ] || fail "$mode mode: fd count went from $n1 to $n2"
    kill_daemons
done
