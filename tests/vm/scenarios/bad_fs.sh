# Files that are not on a dm device, or on a file system whose FIEMAP does not
# give device addresses (btrfs), are refused before forking.
echo data > /tmp/onfs
refuse "file on tmpfs" "exec 5< /tmp/onfs; exec dmfilemapd 5 0 /tmp/onfs inode 0 0"
# ext4 on a bare loop device: a block device, but not device-mapper.
truncate -s 64M /tmp/bare.img
mkfs.ext4 -q -F /tmp/bare.img
mkdir -p /mnt/bare
run mount -o loop /tmp/bare.img /mnt/bare
write_mib /mnt/bare/f 1
refuse "file on ext4 on a loop device" "exec 5< /mnt/bare/f; exec dmfilemapd 5 0 /mnt/bare/f inode 0 0"
umount /mnt/bare
if grep -qw btrfs /proc/filesystems; then
    make_dev btrfs btrfs 256 || fail "cannot make the btrfs device"
    write_mib /mnt/btrfs/f 4
    # A group the daemon would find, so only the file system is wrong.
    run dmsetup message btrfs 0 "@stats_create 0+8 /1 dmstats DMS_GROUP=f:0#-"
    refuse "file on btrfs" "exec 5< /mnt/btrfs/f; exec dmfilemapd 5 0 /mnt/btrfs/f inode 0 0"
    grep -qi btrfs /tmp/r.err || fail "the btrfs refusal does not name btrfs: $(cat /tmp/r.err)"
    umount /mnt/btrfs
    dmsetup remove btrfs
else
    note "no btrfs in this kernel: case skipped"
fi
refusals_done
