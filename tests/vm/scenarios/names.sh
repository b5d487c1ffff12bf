# vm-timeout: 900
# Every name dmstats takes: lvm2's own filemap test names (`filenospace`,
# `File With Spaces`, `file<TAB>with<TAB>tabs`, each plain, --precise,
# --bounds and both), then a backslash, quotes, a leading dash, a name that
# is not UTF-8 (Latin-1 `café`), one whose UTF-8 holds byte 0xA0 (`voilà`:
# the kernel's ctype table calls 0xA0 a space) and a 255-byte name. Each is
# mapped by `dmfilemapd map` (alias: the file's name), followed through a
# growth, read back by this release's dmstats (`report --group`), unmapped;
# then mapped by this release's dmstats itself where it can, and followed
# by our daemon through a growth with the descriptor kept byte for byte.
# A name with a newline is refused (one line, exit 1, nothing made) and
# mapped with --alias instead.
f_dir=/mnt/ext4
tab=$(printf '\t')
latin1=$(printf 'caf\351.img')
voila=$(printf 'voil\303\240')
long=$(awk 'BEGIN { for (i = 0; i < 251; i++) printf "n"; printf ".img" }')
[ ${#long} -eq 255 ] || fail "long name is ${#long} bytes"

# A file of 1 MiB with two holes: three extents.
make_small() {
    write_mib "$1" 1
    xfs_io -c "fpunch 65536 4096" -c "fpunch 524288 4096" "$1" || fail "fpunch $1"
}

# What this release's dmstats shows as the alias of group GID on ext4
# (empty when it shows no such group).
dmstats_alias() {
    dmstats report --group -o group_id,stats_name --noheadings --separator '|' ext4 2> /tmp/nm.err \
        | sed 's/^ *//' | while IFS= read -r line; do
            case $line in "$1|"*) printf '%s\n' "${line#"$1|"}" ;; esac
        done
}

# The descriptor's text for ALIAS in the leader's aux data (DIALECT quoted
# or bare), found byte for byte in @stats_list.
has_descriptor() {
    local d
    case $2 in
        quoted) d=" DMS_GROUP=\"$1\":" ;;
        *) d=" DMS_GROUP=$1:" ;;
    esac
    stats_list ext4 | grep -qF -- "$d"
}

# map_one NAME [OPTIONS...]: map, grow, read back, unmap.
map_one() {
    local name f out gid pid shown want
    name=$1
    shift
    f=$f_dir/$name
    make_small "$f"
    # Quoted on both releases, as this table was measured (the dialect
    # `auto` picks on each is map_dialect_auto's).
    out=$(dmfilemapd map --dialect quoted "$@" -- "$f") || fail "map $* [$name]: $out"
    gid=$(echo "$out" | sed -n 's/.*as group ID \([0-9]*\)\.$/\1/p')
    [ -n "$gid" ] || fail "map $* [$name]: no group id in: $out"
    case $out in
        "$f: Created new group with "*" region(s) as group ID $gid.") ;;
        *) fail "map $* [$name]: printed: $out" ;;
    esac
    pid=$(one_daemon) || exit 1
    expect_group ext4 "$name" "$f"
    has_descriptor "$name" quoted || fail "map [$name]: descriptor not as written: $(stats_list ext4 | grep DMS_GROUP | head -c 400)"
    write_mib "$f" 1 1
    expect_group ext4 "$name" "$f"
    has_descriptor "$name" quoted || fail "map [$name]: descriptor changed by growth: $(stats_list ext4 | grep DMS_GROUP | head -c 400)"
    case $* in
        *--precise*) [ -z "$(stats_list ext4 | grep -v ' precise_timestamps')" ] || fail "map $* [$name]: regions without precise_timestamps" ;;
    esac
    case $* in
        *--bounds*) [ -z "$(stats_list ext4 | grep -v ' histogram:10000,1000000$')" ] || fail "map $* [$name]: regions without the bounds" ;;
    esac
    shown=$(dmstats_alias "$gid")
    want=$name
    [ "$VM_RELEASE" = 12 ] && want="\"$name\""
    if [ "$VM_RELEASE" = 12 ] && [ "$name" != "${name#* }" ]; then
        # Debian 12's dmstats reads no alias with a space (README).
        [ -z "$shown" ] || fail "Debian 12's dmstats shows [$name] as [$shown]"
        note "map $* [$name]: mapped, grown, Debian 12's dmstats shows no group (space)"
    else
        [ "$shown" = "$want" ] || fail "map $* [$name]: dmstats shows [$shown] ($(cat /tmp/nm.err))"
        note "map $* [$name]: mapped, grown, dmstats shows [$shown]"
    fi
    out=$(dmfilemapd unmap -- "$f" 2>&1) || fail "unmap [$name]: $out"
    wait_exit "$pid" 13 || fail "unmap [$name]: daemon still running"
    [ -z "$(stats_list ext4)" ] || fail "unmap [$name]: regions left: $(stats_list ext4 | head -3)"
    rm -f -- "$f"
}

# theirs NAME: this release's dmstats maps it (Debian 12 starts our daemon,
# Debian 13 starts none: ours is started by hand as dmstats would), our
# daemon follows a growth and keeps the descriptor byte for byte.
theirs() {
    local name f gid pid dialect
    name=$1
    f=$f_dir/$name
    make_small "$f"
    case $VM_RELEASE in
        12) gid=$(VM_FILEMAP=dmstats start_filemap "$f") || exit 1; dialect=bare ;;
        *) gid=$(VM_FILEMAP=hand start_filemap "$f") || exit 1; dialect=quoted ;;
    esac
    pid=$(one_daemon) || exit 1
    has_descriptor "$name" $dialect || fail "dmstats [$name]: descriptor: $(stats_list ext4 | grep DMS_GROUP | head -c 400)"
    expect_group ext4 "$name" "$f"
    write_mib "$f" 1 1
    expect_group ext4 "$name" "$f"
    has_descriptor "$name" $dialect || fail "daemon changed the descriptor of [$name]: $(stats_list ext4 | grep DMS_GROUP | head -c 400)"
    run dmstats delete --groupid "$gid" ext4
    wait_exit "$pid" 13 || fail "dmstats [$name]: daemon still running after delete"
    [ -z "$(stats_list ext4)" ] || fail "dmstats [$name]: regions left: $(stats_list ext4 | head -3)"
    rm -f -- "$f"
    note "dmstats [$name]: mapped, followed by our daemon through a growth, $dialect descriptor kept"
}

for name in filenospace "File With Spaces" "file${tab}with${tab}tabs"; do
    map_one "$name"
    map_one "$name" --precise
    map_one "$name" --bounds 10us,1ms
    map_one "$name" --precise --bounds 10us,1ms
done
for name in 'back\slash' 'double"quote' "single'quote" '-leading-dash' "$latin1" "$voila" "$long" '#hash#' 'a\ b\\"c'; do
    map_one "$name"
done

# Names this release's dmstats maps itself: Debian 12's escapes nothing, so
# no byte the kernel splits on, and the kernel eats a backslash it sends
# bare; Debian 13's escapes space, tab and backslash.
for name in filenospace 'double"quote' '-leading-dash' "$latin1" "$long"; do
    theirs "$name"
done
if [ "$VM_RELEASE" != 12 ]; then
    theirs 'back\slash'
    theirs "File With Spaces"
    theirs "file${tab}with${tab}tabs"
fi

# What lvm2's own dmstats does with a byte the kernel splits on that it
# does not escape (0xA0, inside `voilà`): recorded, not asserted.
f=$f_dir/$voila
make_small "$f"
if out=$(dmstats create --filemap --nomonitor "$f" 2>&1); then
    note "dmstats create --filemap [$voila]: $out; stored: $(stats_list ext4 | grep DMS_GROUP | cut -d' ' -f5- | head -c 200)"
else
    note "dmstats create --filemap [$voila] fails: $(echo "$out" | tail -1)"
fi
clear_device ext4

# A newline: no reader reads it back (the kernel prints one region a line).
nl=$(printf 'new\nline')
f=$f_dir/$nl
make_small "$f"
out=$(dmfilemapd map -- "$f" 2>&1) && fail "map of a name with a newline succeeded: $out"
[ "$(echo "$out" | wc -l)" -eq 1 ] || fail "refusal is not one line: $out"
case $out in *"--alias"*"holds a newline"*) ;; *) fail "refusal does not say why: $out" ;; esac
[ -z "$(stats_list ext4)" ] || fail "refused map left regions: $(stats_list ext4 | head -3)"
[ -z "$(daemon_pids)" ] || fail "refused map left a daemon"
note "newline refused: $out"
out=$(dmfilemapd map --alias newline -- "$f") || fail "map --alias newline: $out"
pid=$(one_daemon) || exit 1
expect_group ext4 newline "$f"
run dmfilemapd unmap -- "$f"
wait_exit "$pid" 13 || fail "daemon still running after unmap"
[ -z "$(stats_list ext4)" ] || fail "regions left: $(stats_list ext4 | head -3)"
