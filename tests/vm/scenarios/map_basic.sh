# `dmfilemapd map` with each option makes the group `dmstats create --filemap`
# makes: the same @stats_list reply, byte for byte, and the same line printed.
# (map_follow: the daemon map starts follows it.)
f=/mnt/ext4/mb
make_fragmented "$f" 1
write_mib "$f" 1 1

# like_dmstats OPTION...: map $f with dmstats (no daemon), then with us; the
# kernel holds the same regions (ids are handed out lowest first, so both
# runs get the same ones) and both print the same line. Debian 12's dmstats
# drops --precise with --filemap (it reads the switch as a number, 0): with
# it, the regions are compared without their options, and the options are
# checked against TAIL, what dmstats >= 2.03.17 writes.
like_dmstats() {
    local theirs ours pid tail
    tail=
    case $1 in --tail=*) tail=${1#--tail=}; shift ;; esac
    theirs=$(dmstats create --filemap --nomonitor "$@" "$f" 2>&1) || fail "dmstats $*: $theirs"
    stats_list ext4 > /tmp/theirs.list
    dmstats delete --allregions ext4 > /dev/null 2>&1
    [ -z "$(stats_list ext4)" ] || fail "dmstats left regions"
    ours=$(dmfilemapd map "$@" "$f" 2>&1) || fail "map $*: $ours"
    pid=$(one_daemon) || exit 1
    kill_daemons
    stats_list ext4 > /tmp/ours.list
    [ "$ours" = "$theirs" ] || fail "map $*: printed \"$ours\", dmstats \"$theirs\""
    if [ -n "$tail" ]; then
        for l in theirs ours; do
            sed -e 's/ precise_timestamps//' -e 's/ histogram:[0-9,]*//' /tmp/$l.list > /tmp/$l.cut
        done
        cmp -s /tmp/theirs.cut /tmp/ours.cut || {
            diff /tmp/theirs.cut /tmp/ours.cut | head -6
            fail "map $*: regions differ from dmstats' (above)"
        }
        bad=$(grep -v " $tail\$" /tmp/ours.list | head -3)
        [ -z "$bad" ] || fail "map $*: regions without \"$tail\": $bad"
    else
        cmp -s /tmp/theirs.list /tmp/ours.list || {
            diff /tmp/theirs.list /tmp/ours.list | head -6
            fail "map $*: regions differ from dmstats' (above)"
        }
    fi
    note "map $*: $(grep -c . /tmp/ours.list) regions as dmstats makes them; $ours"
    dmfilemapd unmap "$f" || fail "unmap after map $*"
}
like_dmstats
like_dmstats --alias vm.img
like_dmstats --tail=precise_timestamps --precise
like_dmstats --bounds 10ms,20ms
like_dmstats --bounds 10us,1ms,1s
like_dmstats --bounds 100,200
like_dmstats --tail="precise_timestamps histogram:1000000,2000000" --precise --bounds 1ms,2ms
like_dmstats --bounds 1ms,2,3s
like_dmstats --alias x --precise --bounds 5us
