# vm-timeout: 180
# Its writes alone (2,100 O_DIRECT writes of 4 KiB, under emulation) took
# 37 s on a loaded machine and over 60 s at a load of 19 (soak, hang guard
# hit while interleaving): the limit is a hang guard, not a speed test.
# Two files growing interleaved (O_DIRECT, so their blocks alternate), each
# with its own daemon; then every other block of one is punched, so its member
# list becomes non-contiguous and longer than 1 KiB (C stops updating there).
a=/mnt/xfs/ia
b=/mnt/xfs/ib
# interleave FIRST_BLOCK COUNT: alternate 4 KiB O_DIRECT writes to a and b.
interleave() {
    cmds=""
    i=$1
    while [ $i -lt $(($1 + $2)) ]; do
        cmds="$cmds -c 'file 0' -c 'pwrite -q $((i * 4096)) 4096' -c 'file 1' -c 'pwrite -q $((i * 4096)) 4096'"
        i=$((i + 1))
    done
    eval "xfs_io -f -d -c 'open -f -d $b' $cmds $a" > /dev/null || fail "interleaved writes failed"
}
interleave 0 64
note "extents after interleaving: a $(file_extents $a | wc -l), b $(file_extents $b | wc -l)"
start_filemap "$a" > /dev/null
start_filemap "$b" > /dev/null
[ "$(daemon_pids | wc -l)" -eq 2 ] || fail "expected two daemons: $(daemon_pids | tr '\n' ' ')"
expect_group xfs ia "$a"
expect_group xfs ib "$b"
interleave 64 1024
note "extents after growing: a $(file_extents $a | wc -l), b $(file_extents $b | wc -l)"
expect_group xfs ia "$a"
expect_group xfs ib "$b"
fragment "$a" 5
expect_group xfs ia "$a"
len=$(group_members | wc -c)
note "member list of ia: $len bytes"
[ "$len" -gt 1024 ] || fail "member list only $len bytes (test is void)"
expect_group xfs ib "$b"
write_mib "$a" 1 5
expect_group xfs ia "$a"
[ "$(daemon_pids | wc -l)" -eq 2 ] || fail "a daemon exited"
