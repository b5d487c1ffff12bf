# Other programs' regions with hostile aux data on the same device (binary
# junk, a 10 KiB line, descriptors naming our ids) change nothing for us and
# are never touched.
f=/mnt/ext4/ha
make_fragmented "$f" 1
start_filemap "$f" > /dev/null
pid=$(one_daemon) || exit 1
expect_group ext4 ha "$f"
junk=$(printf 'x\001\002\177\200\377\\:#"=,-')
run dmsetup message ext4 0 "@stats_create 100+8 /1 evil $junk"
long=$(awk 'BEGIN { for (i = 0; i < 10240; i++) printf "%c", 65 + i % 26 }')
run dmsetup message ext4 0 "@stats_create 200+8 /1 evil $long"
run dmsetup message ext4 0 "@stats_create 300+8 /1 evil DMS_GROUP=ha:0-3#-"
run dmsetup message ext4 0 "@stats_create 400+8 /1 evil DMS_GROUP=\"ha\":0,2,4#x"
run dmsetup message ext4 0 "@stats_create 500+8 /1 evil DMS_GROUP=broken:0-#"
before=$(stats_list ext4 | grep ' evil ' | md5sum)
note "$(stats_list ext4 | grep -c ' evil ') hostile regions, longest line $(stats_list ext4 | awk '{ if (length > m) m = length } END { print m }') bytes"
write_mib "$f" 2 1
xfs_io -c "fpunch 4096 4096" -c "fpunch $((1048576 + 8192)) 4096" "$f"
# check_group would see the foreign "ha" descriptors as a second group: check
# the tiling with them filtered out.
i=0
while :; do
    stats_list ext4 | grep -v ' evil ' > /tmp/ha.list
    awk '{ split($2, a, "+"); print a[1] "+" a[2] }' /tmp/ha.list > /tmp/ha.ranges
    file_extents "$f" > /tmp/ha.ext
    check_tiling /tmp/ha.ext /tmp/ha.ranges > /tmp/ha.why && break
    [ $i -ge 30 ] && fail "group does not tile the file: $(head -3 /tmp/ha.why | tr '\n' ';')"
    sleep 0.1
    i=$((i + 1))
done
[ "$(grep -cE 'DMS_GROUP="?ha"?:' /tmp/ha.list)" -eq 1 ] || fail "our descriptor is missing or doubled"
after=$(stats_list ext4 | grep ' evil ' | md5sum)
[ "$before" = "$after" ] || fail "hostile regions changed"
alive "$pid" || fail "daemon exited"
