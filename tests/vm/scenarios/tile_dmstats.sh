# vm-timeout: 120
# The release's dmstats reads a tiled group (one extent grown in direct-write
# steps, so several regions tile it) as one group: `list --group` shows one
# group row, `report --group` one row whose counters are the sum of its
# members'; `update_filemap` on it leaves a group that tiles the file, no
# stray region; `delete --groupid` removes every region and ends the daemons.
# Measured: the kernel's counters read 0 after `list --group` and `report
# --group` (a clearing read), so the members' sum is taken from @stats_print
# before them.
# Debian 12's update_filemap only starts a second daemon (ours, from PATH),
# which finds the tiles true and changes nothing; Debian 13's ("dmfilemapd
# support disabled.", exit 0) rewrites the group itself as one region per
# extent (the tiles merged, same group id); ours keeps following it.
f=/mnt/ext4/td
group_members_ids() { awk '{ print $1 }' /tmp/cg.regions; }
write_mib "$f" 1
map "$f" > /dev/null
pid=$(one_daemon) || exit 1
expect_group ext4 td "$f"
step=0
while [ $step -lt 4 ]; do
    append_direct "$f" $((1048576 + step * 262144)) 262144
    expect_group ext4 td "$f"
    step=$((step + 1))
done
nreg=$(cat /tmp/cg.nregions) next=$(wc -l < /tmp/cg.ext)
[ "$nreg" -gt "$next" ] || fail "not tiled: $nreg regions for $next extents (test is void)"
gid=$(ks_leader ext4 td)
[ -n "$gid" ] || fail "no leader for td"
note "group $gid: $nreg regions tile $next extents"
stats_list ext4
# Direct reads (the page cache would hide repeats): twice the file's sectors.
read_direct "$f"
read_direct "$f"
sectors=$(( $(stat -c %s "$f") / 512 * 2 ))

# The members' counters as the kernel keeps them (@stats_print: reads in the
# 2nd field, sectors read in the 4th, one line per area).
for id in $(group_members_ids); do
    dmsetup message ext4 0 "@stats_print $id"
done > /tmp/p.out
msum=$(awk '{ r += $2; s += $4 } END { print r + 0, s + 0 }' /tmp/p.out)
dmstats list --group ext4 > /tmp/l.out 2>&1 || fail "dmstats list --group: $(cat /tmp/l.out)"
cat /tmp/l.out
dmstats list --group --noheadings -o obj_type,group_id,stats_name ext4 > /tmp/l.out 2>&1 \
    || fail "dmstats list --group -o: $(cat /tmp/l.out)"
cat /tmp/l.out
rows=$(awk -F: -v g="$gid" '$2 == g' /tmp/l.out | grep -c .)
[ "$rows" -eq 1 ] || fail "list --group: $rows rows for group $gid"
awk -F: -v g="$gid" '$2 == g' /tmp/l.out | grep -Eq '^group:[0-9]+:"?td"?$' \
    || fail "list --group: the row of group $gid is not the group td"

dmstats report --group --noheadings -o obj_type,group_id,stats_name,read_count,read_sector_count ext4 > /tmp/r.out 2>&1 \
    || fail "dmstats report --group: $(cat /tmp/r.out)"
cat /tmp/r.out
rows=$(awk -F: -v g="$gid" '$2 == g' /tmp/r.out | grep -c .)
[ "$rows" -eq 1 ] || fail "report --group: $rows rows for group $gid"
grow=$(awk -F: -v g="$gid" '$2 == g { print $4 " " $5 }' /tmp/r.out)
set -- $msum
after=$(for id in $(group_members_ids); do
    dmsetup message ext4 0 "@stats_print $id"
done | awk '{ r += $2; s += $4 } END { print r + 0, s + 0 }')
note "the members' kernel counters (reads, sectors read): $msum before dmstats report, $after after"
[ "$grow" = "$1 $2" ] || fail "group row reads/sectors $grow, its members' sum $1 $2"
# What dmstats shows per member (shown, not compared: 0 after the clear).
dmstats report --region --noheadings -o obj_type,group_id,region_id,read_count,read_sector_count ext4 2>&1
dmstats report --area --noheadings -o obj_type,group_id,region_id,area_id,read_count,read_sector_count ext4 2>&1
[ "$2" -eq "$sectors" ] || fail "the group counted $2 sectors read, the reads were $sectors"
note "group $gid: $grow (reads, sectors read) = the sum over its $nreg members; $sectors sectors read"

out=$(dmstats update_filemap --groupid "$gid" "$f" 2>&1)
rc=$?
note "update_filemap (exit $rc): $out"
[ $rc -eq 0 ] || fail "dmstats update_filemap --groupid $gid exited $rc: $out"
sleep 1
note "daemons after update_filemap: $(daemon_pids | tr '\n' ' ') (first $pid $(alive "$pid" && echo running || echo exited))"
expect_group ext4 td "$f"
sleep 1
expect_group ext4 td "$f"
stats_list ext4
gid=$(ks_leader ext4 td)
note "group id now $gid"
pids=$(daemon_pids)
[ -n "$pids" ] || fail "no daemon follows the group after update_filemap"

run dmstats delete --groupid "$gid" ext4
[ -z "$(stats_list ext4)" ] || fail "regions left: $(stats_list ext4 | head -3)"
for p in $pids; do
    wait_exit "$p" 13 || fail "daemon $p still running 13 s after its group was deleted"
done
# With VM_DEBUG=1 the daemons' log says why they ended.
[ ! -f /tmp/dmfilemapd.log ] || grep 'Filemap group removed' /tmp/dmfilemapd.log || true
