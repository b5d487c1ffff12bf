# The group must exist on the file's device and be a filemap group, and the
# path must name the fd's file.
f=/mnt/ext4/bg
make_fragmented "$f" 1
gid=$(map "$f" --nomonitor) || exit 1
D="exec 5< $f; exec dmfilemapd 5"
refuse "missing group id" "$D 500 $f inode 0 0"
refuse "group id far above" "$D 4000000 $f inode 0 0"
run dmsetup message ext4 0 "@stats_create 0+8 /1 dmstats -"
plain=$(stats_list ext4 | grep ' 0+8 ' | cut -d: -f1)
refuse "a region that is not a group" "$D $plain $f inode 0 0"
refuse "a member that is not the leader" "$D $((gid + 1)) $f inode 0 0"
write_mib /mnt/ext4/other 1
refuse "a path naming another file" "$D $gid /mnt/ext4/other inode 0 0"
refuse "a path naming nothing" "$D $gid /mnt/ext4/nothing inode 0 0"
refusals_done
