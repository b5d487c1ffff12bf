# A defragmenter moves every block and keeps st_blocks: the group follows the
# new extents (ext4 with e4defrag, xfs with xfs_fsr).
for fs in ext4 xfs; do
    a=/mnt/$fs/dfa
    b=/mnt/$fs/dfb
    # Interleaved O_DIRECT writes leave both files in many small extents.
    cmds=""
    i=0
    while [ $i -lt 256 ]; do
        cmds="$cmds -c 'file 0' -c 'pwrite -q $((i * 4096)) 4096' -c 'file 1' -c 'pwrite -q $((i * 4096)) 4096'"
        i=$((i + 1))
    done
    eval "xfs_io -f -d -c 'open -f -d $b' $cmds $a" > /dev/null || fail "interleaved writes failed"
    start_filemap "$a" > /dev/null
    pid=$(one_daemon) || exit 1
    expect_group "$fs" dfa "$a"
    n0=$(file_extents "$a" | wc -l)
    blocks=$(stat -c %b "$a")
    rm "$b"
    case $fs in
        ext4) e4defrag "$a" ;;
        xfs) xfs_fsr -v "$a" ;;
    esac
    sync
    n1=$(file_extents "$a" | wc -l)
    note "$fs: $n0 extents before defragmenting, $n1 after; st_blocks $blocks -> $(stat -c %b "$a")"
    [ "$n1" -lt "$n0" ] || fail "$fs: the defragmenter did not move anything (test is void)"
    expect_group "$fs" dfa "$a"
    alive "$pid" || fail "$fs: daemon exited"
    kill_daemons
done
