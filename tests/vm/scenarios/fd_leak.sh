# vm-timeout: 240
# No fd or inotify instance leaks from cycle to cycle, in either mode (C leaks
# one inotify instance per cycle in path mode).
# The daemon's fds while it sleeps: the fewest of 20 counts 0.1 s apart. In
# path mode it holds the file open while it looks (a check, a rescan, the
# confirm window's lists), so one count can catch it awake with one fd
# more (the soak, on arm64); a leak stays in every count.
fdcount() {
    local i c m
    i=0 m=""
    while [ $i -lt 20 ]; do
        c=$(ls "/proc/$1/fd" | wc -l)
        [ -z "$m" ] || [ "$c" -lt "$m" ] && m=$c
        sleep 0.1
        i=$((i + 1))
    done
    echo "$m"
}
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
