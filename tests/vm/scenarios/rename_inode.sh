# inode mode follows the file through renames, in and across directories.
f=/mnt/ext4/ren
make_fragmented "$f" 1
start_filemap "$f" > /dev/null
pid=$(one_daemon) || exit 1
expect_group ext4 ren "$f"
run mv "$f" /mnt/ext4/ren2
write_mib /mnt/ext4/ren2 2 1
expect_group ext4 ren /mnt/ext4/ren2
mkdir -p /mnt/ext4/d
run mv /mnt/ext4/ren2 /mnt/ext4/d/ren3
run truncate -s 512K /mnt/ext4/d/ren3
expect_group ext4 ren /mnt/ext4/d/ren3
alive "$pid" || fail "daemon exited"
