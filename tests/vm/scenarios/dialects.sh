# vm-release: 13
# vm-timeout: 180
# Research: which group descriptor form do Debian 12's dmstats (lvm2 2.03.16)
# and Debian 13's (2.03.31) both read back with the alias intact? Both run in
# this guest (Debian 12's as /opt/bookworm/sbin/dmstats). First what each
# writes for `create --filemap --alias A`, then each descriptor, written by
# hand in both dialects, read by each release's list --group, report --group,
# update_filemap and delete --groupid. Prints the table (also on run.sh's
# output); asserts only that each release reads back what it writes itself.
D12=/opt/bookworm/sbin/dmstats
D13=/opt/trixie/bin/dmstats
dev=ext4
f=/mnt/ext4/dl

out() { echo "$*"; echo "  $*" > "${REPORT_TTY:-/dev/ttyS1}"; }

# A file of two extents (block 1 of 1 MiB punched): members 0-1.
fresh_file() {
    rm -f "$f"
    write_mib "$f" 1
    xfs_io -c "fpunch 4096 4096" "$f" || fail "fpunch"
    sync
    [ "$(file_extents "$f" | wc -l)" = 2 ] || fail "want 2 extents: $(file_extents "$f" | tr '\n' ' ')"
}

# No region left, whatever the aux data (dmstats may refuse to parse it).
clear_regions() {
    stats_list "$dev" | sed -n 's/^\([0-9]*\): .*/\1/p' | while read -r id; do
        dmsetup message "$dev" 0 "@stats_delete $id"
    done
}

# The aux data of region 0, and its alias part (between DMS_GROUP= and the
# last ":members#"), as stored.
aux0() { stats_list "$dev" | sed -n 's/^0: [^ ]* [^ ]* [^ ]* //p'; }
alias_part() { aux0 | sed -n 's/^DMS_GROUP=\(.*\):[0-9,-]*#.*$/\1/p'; }

# The group's name as READER's CMD (list or report) shows it: "ok" when it is
# WANT, else [shown], or "err" when it shows no group.
shown() {
    local got
    got=$($1 "$2" --group --noheadings --separator '|' -o stats_name,obj_type "$dev" 2> /dev/null \
        | awk -F'|' '$2 == "group" { print $1; exit }')
    if [ -z "$got" ]; then echo err
    elif [ "$got" = "$3" ]; then echo ok
    else echo "[$got]"
    fi
}

# --- what each release writes -------------------------------------------
out "dialects: what \`dmstats create --filemap --alias A\` stores"
out "| alias A | Debian 12 (2.03.16) | Debian 13 (2.03.31) |"
out "|---|---|---|"
for a in plain "my alias" "a:b"; do
    row="| $a"
    for r in 12 13; do
        eval R=\$D$r
        fresh_file
        clear_regions
        if o=$($R create --filemap --nomonitor --alias "$a" "$f" 2>&1); then
            w=$(aux0)
            row="$row | \`${w%%#*}#\`"
            eval "wrote_${r}_$(echo "$a" | tr -c 'a-z\n' _)=\"\$w\""
        else
            row="$row | fails: $(echo "$o" | grep -v '^ *$' | head -n 1 | cut -c1-60)"
        fi
        clear_regions
    done
    out "$row |"
done
# Each release writes its own dialect (what the daemon keeps on update).
[ "$wrote_12_plain" = "DMS_GROUP=plain:0-1#-" ] || fail "Debian 12's dmstats wrote: $wrote_12_plain"
[ "$wrote_13_plain" = "DMS_GROUP=\"plain\":0-1#-" ] || fail "Debian 13's dmstats wrote: $wrote_13_plain"

# --- how each release reads each form -------------------------------------
# cells READER DESCRIPTOR(escaped for the message) WANT(name shown): one
# reader's four cells for a fresh group with that descriptor on region 0.
cells() {
    local R before e l r u d
    eval R=\$D$1
    fresh_file
    clear_regions
    for e in $(file_extents "$f"); do
        dmsetup message "$dev" 0 "@stats_create $e /1 dmstats -" > /dev/null || fail "@stats_create $e"
    done
    dmsetup message "$dev" 0 @stats_set_aux 0 "$2" || fail "@stats_set_aux 0 $2"
    before=$(alias_part)
    l=$(shown "$R" list "$3")
    r=$(shown "$R" report "$3")
    write_mib "$f" 1 2
    if ! $R update_filemap --nomonitor --groupid 0 "$f" > /dev/null 2>&1; then u=err
    elif [ "$(alias_part)" = "$before" ]; then u=kept
    else u="[$(alias_part)]"
    fi
    if $R delete --groupid 0 "$dev" > /dev/null 2>&1 && [ -z "$(stats_list "$dev")" ]; then d=ok; else d=err; fi
    clear_regions
    echo "$l | $r | $u | $d"
}

out "dialects: each descriptor read back (ok: the alias as written; [x]: shown or stored as x; kept: update_filemap stored the alias unchanged)"
out "| stored descriptor | 12 list | 12 report | 12 update_filemap | 12 delete | 13 list | 13 report | 13 update_filemap | 13 delete |"
out "|---|---|---|---|---|---|---|---|---|"
# DESCRIPTOR (as sent, escaped) | WANT (as a reader should show it)
while IFS='|' read -r desc want; do
    c12=$(cells 12 "$desc" "$want" < /dev/null) || exit 1
    c13=$(cells 13 "$desc" "$want" < /dev/null) || exit 1
    out "| \`$(echo "$desc" | sed 's/\\ / /g')\` | $c12 | $c13 |"
    case $desc in
        'DMS_GROUP=plain:0-1#-') own12=$c12 ;;
        'DMS_GROUP="plain":0-1#-') own13=$c13 ;;
    esac
done <<'EOF'
DMS_GROUP=plain:0-1#-|plain
DMS_GROUP="plain":0-1#-|plain
DMS_GROUP=my\ alias:0-1#-|my alias
DMS_GROUP="my\ alias":0-1#-|my alias
DMS_GROUP=a:b:0-1#-|a:b
DMS_GROUP="a:b":0-1#-|a:b
DMS_GROUP=:0-1#-|ext4
DMS_GROUP="":0-1#-|ext4
EOF
[ "$own12" = "ok | ok | kept | ok" ] || fail "Debian 12's dmstats does not read back its own descriptor: $own12"
[ "$own13" = "ok | ok | kept | ok" ] || fail "Debian 13's dmstats does not read back its own descriptor: $own13"
