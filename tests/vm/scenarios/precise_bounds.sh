# --precise and --bounds are carried to every region the daemon creates.
f=/mnt/xfs/pb
make_fragmented "$f" 1
start_filemap --precise --bounds 10ms,20ms "$f" > /dev/null
pid=$(one_daemon) || exit 1
expect_group xfs pb "$f"
# (Region 1 is a member: aux data `-`, or our mark where map made it.)
opts=$(region_line xfs 1 | sed -n 's/.*dmstats -[^ ]*\( .*\)$/\1/p')
note "options of region 1: \"$opts\""
case $opts in *histogram:*) ;; *) fail "dmstats made regions without a histogram: $(region_line xfs 1)" ;; esac
write_mib "$f" 2 1
xfs_io -c "fpunch $((1048576 + 8192)) 4096" -c "fpunch $((1048576 + 65536)) 4096" "$f"
expect_group xfs pb "$f"
# The options as dmstats set them on the regions it made (Debian 12's dmstats
# sends the bounds in ms and may leave out precise_timestamps).
n=$(stats_list xfs | grep -c .)
bad=$(stats_list xfs | grep -v "$opts\$" | head -3)
[ -z "$bad" ] || fail "regions without \"$opts\": $bad"
note "all $n regions end with \"$opts\""
alive "$pid" || fail "daemon exited"
