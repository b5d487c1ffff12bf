# The demo (tests/vm/demo.sh): map a file, grow it, watch the group follow.
show() { echo; echo "# $*"; "$@"; }
f=/mnt/xfs/data.img
echo "A 1 GiB xfs on the linear dm device /dev/mapper/xfs; a file with a few extents:"
write_mib "$f" 4
xfs_io -c "fpunch 1M 64K" -c "fpunch 2M 64K" "$f"
show filefrag -v "$f"
show dmstats create --filemap "$f"
pid=$(one_daemon) || exit 1
echo "dmfilemapd is running as pid $pid ($(tr '\0' ' ' < /proc/$pid/cmdline))"
show dmstats list --group
expect_group xfs data.img "$f"
echo
echo "# grow the file by 8 MiB, in pieces, and read some of it back"
write_mib "$f" 8 4
xfs_io -c "fpunch 6M 64K" -c "fpunch 9M 64K" "$f"
dd if="$f" of=/dev/null bs=1M count=12 iflag=direct 2> /dev/null
expect_group xfs data.img "$f"
show filefrag "$f"
show dmstats list --group
show dmstats report --group
show dmstats list
echo
echo "# shrink it to 2 MiB"
truncate -s 2M "$f"
expect_group xfs data.img "$f"
show dmstats list
alive "$pid" && echo "dmfilemapd $pid still running"
