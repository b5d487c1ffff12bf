# vm-timeout: 120
# `dmfilemapd map` with each option makes the group `dmstats create --filemap`
# makes: the same @stats_list reply, byte for byte but the members' aux data
# (ours carry `-dmfilemapd:made:<fingerprint>`, dmstats' `-`: libdm reads
# both as empty, which the same `dmstats report` of both shows), and the same
# line printed. (map_follow: the daemon map starts follows it.)
# map writes the descriptor quoted (`DMS_GROUP="alias":...`) as Debian 13's
# dmstats does: on 13 the lists are equal byte for byte. Debian 12's dmstats
# writes it bare (`DMS_GROUP=alias:...`) and shows a quoted alias with its
# quotes: there the descriptors must hold the same alias, members and user
# data, ours quoted, and the rest is compared byte for byte; the report
# shows our alias as "alias".
f=/mnt/ext4/mb
make_fragmented "$f" 1
write_mib "$f" 1 1

# What dmstats reads of the regions: ids, group, extents, aux data as user data.
dm_view() {
    dmstats report --noheadings --separator : -o region_id,group_id,region_start,region_len,user_data,stats_name ext4 2>&1
}

# like_dmstats OPTION...: map $f with dmstats (no daemon), then with us; the
# kernel holds the same regions (ids are handed out lowest first, so both
# runs get the same ones) and both print the same line. Debian 12's dmstats
# drops --precise with --filemap (it reads the switch as a number, 0): with
# it, the regions are compared without their options, and the options are
# checked against TAIL, what dmstats >= 2.03.17 writes.
like_dmstats() {
    local theirs ours pid tail alias a prev
    tail=
    case $1 in --tail=*) tail=${1#--tail=}; shift ;; esac
    alias=$(basename "$f") prev=
    for a; do
        [ "$prev" = --alias ] && alias=$a
        prev=$a
    done
    theirs=$(dmstats create --filemap --nomonitor "$@" "$f" 2>&1) || fail "dmstats $*: $theirs"
    stats_list ext4 > /tmp/theirs.list
    dm_view > /tmp/theirs.view || fail "dmstats report: $(head -3 /tmp/theirs.view)"
    [ -s /tmp/theirs.view ] || fail "dmstats report shows nothing"
    dmstats delete --allregions ext4 > /dev/null 2>&1
    [ -z "$(stats_list ext4)" ] || fail "dmstats left regions"
    ours=$(dmfilemapd map --dialect quoted "$@" "$f" 2>&1) || fail "map $*: $ours"
    pid=$(one_daemon) || exit 1
    kill_daemons
    stats_list ext4 | sed -e 's/ -dmfilemapd:made:[0-9a-f]\{16\}$/ -/' -e 's/ -dmfilemapd:made:[0-9a-f]\{16\} / - /' > /tmp/ours.list
    dm_view > /tmp/ours.view || fail "dmstats report: $(head -3 /tmp/ours.view)"
    grep -q " DMS_GROUP=\"$alias\":" /tmp/ours.list \
        || fail "map $*: no quoted descriptor for \"$alias\": $(grep DMS_GROUP /tmp/ours.list | head -1)"
    if [ "$VM_RELEASE" = 12 ]; then
        # Theirs bare, ours quoted: the same alias, members and user data.
        grep -q " DMS_GROUP=$alias:" /tmp/theirs.list \
            || fail "dmstats $*: no bare descriptor for $alias: $(grep DMS_GROUP /tmp/theirs.list | head -1)"
        sed -i "s/ DMS_GROUP=\"$alias\":/ DMS_GROUP=$alias:/" /tmp/ours.list
        sed -i "s/:$alias\$/:\"$alias\"/" /tmp/theirs.view
    fi
    cmp -s /tmp/theirs.view /tmp/ours.view || {
        diff /tmp/theirs.view /tmp/ours.view | head -6
        fail "map $*: dmstats reports our regions otherwise than its own (above)"
    }
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
    note "map $*: $(grep -c . /tmp/ours.list) regions as dmstats makes them, reported alike ($(head -1 /tmp/ours.view | tr -s ' ')); $ours"
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
