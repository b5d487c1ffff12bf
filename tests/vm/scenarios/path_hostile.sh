# vm-timeout: 90
# path mode: the path replaced by something that is not a regular file on the
# same dm device is treated as absent: no blocking, no foreign file mapped;
# the daemon exits after its retries, the group as it was.
write_mib /mnt/xfs/foreign 1
mkfifo /tmp/fifo.src
n=0
for kind in fifo symlink-to-fifo device-node other-device; do
    n=$((n + 1))
    f=/mnt/ext4/ph$n
    make_fragmented "$f" 1
    start_filemap --follow path "$f" > /dev/null
    pid=$(one_daemon) || exit 1
    expect_group ext4 "ph$n" "$f"
    snapshot=$(stats_list ext4 | grep -v "^[0-9]*: .* dmstats DMS_GROUP=ph[0-9]*:" | md5sum)
    case $kind in
        fifo) mkfifo "$f.new" ;;
        symlink-to-fifo) ln -s /tmp/fifo.src "$f.new" ;;
        device-node) mknod "$f.new" c 1 3 ;;
        other-device) ln -s /mnt/xfs/foreign "$f.new" ;;
    esac
    run mv "$f.new" "$f"
    if ! wait_exit "$pid" 13; then
        fail "$kind: daemon still running 13 s after the path was replaced ($(cat /proc/$pid/wchan 2>/dev/null))"
    fi
    note "$kind: daemon exited"
    [ -z "$(stats_list xfs)" ] || fail "$kind: regions appeared on xfs: $(stats_list xfs | head -2)"
    check_consistent ext4 "ph$n" > /tmp/why || fail "$kind: group left inconsistent: $(cat /tmp/why)"
    # Debian 12's dmstats cannot map a file beside a group whose file is gone.
    dmstats delete --allregions ext4
done
