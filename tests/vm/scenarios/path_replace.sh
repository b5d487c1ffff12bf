# path mode: a new file renamed over the path is mapped into the same group.
f=/mnt/ext4/pr
make_fragmented "$f" 1
start_filemap --follow path "$f" > /dev/null
pid=$(one_daemon) || exit 1
expect_group ext4 pr "$f"
make_fragmented /mnt/ext4/pr.new 2
write_mib /mnt/ext4/pr.new 1 2
run mv /mnt/ext4/pr.new "$f"
expect_group ext4 pr "$f"
write_mib "$f" 1 3
expect_group ext4 pr "$f"
alive "$pid" || fail "daemon exited"
