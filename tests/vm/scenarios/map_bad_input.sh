# Bad input to map and unmap: one line on stderr, exit 1, nothing created, no daemon.
f=/mnt/ext4/bi
make_fragmented "$f" 1
echo data > /tmp/onfs
mkdir -p /mnt/ext4/dir
: > /mnt/ext4/empty
nothing() {
    local d
    for d in ext4 xfs; do
        [ -z "$(stats_list $d)" ] || fail "$1 left regions on $d: $(stats_list $d | head -3)"
    done
}
M="dmfilemapd map"
refuse "map: no file" "$M"
refuse "map: two files" "$M $f $f"
refuse "map: missing file" "$M /mnt/ext4/nothing-here"
refuse "map: empty path" "$M ''"
refuse "map: a directory" "$M /mnt/ext4/dir"
refuse "map: an empty file (no extents)" "$M /mnt/ext4/empty"
refuse "map: file on tmpfs" "$M /tmp/onfs"
refuse "map: a FIFO" "mkfifo /tmp/fifo; $M /tmp/fifo"
refuse "map: a device node" "$M /dev/mapper/ext4"
refuse "map: unknown option" "$M --nogroup $f"
refuse "map: unknown short option" "$M -x $f"
refuse "map: --follow bogus" "$M --follow bogus $f"
refuse "map: --follow without value" "$M $f --follow"
refuse "map: --precise=1" "$M --precise=1 $f"
refuse "map: --verbose 4" "$M --verbose 4 $f"
refuse "map: alias with a newline" "$M --alias 'a
b' $f"
refuse "map: alias with '\":'" "$M --alias 'x\":y' $f"
# No dmstats reads back a group whose alias holds a colon (the dialects table).
refuse "map: alias with a colon" "$M --alias a:b $f"
grep -q "a:b" /tmp/r.err || fail "the colon refusal does not name the alias: $(cat /tmp/r.err)"
# A file name with a colon is the alias unless --alias names another.
cp "$f" /mnt/ext4/c:d
refuse "map: file name with a colon, no --alias" "$M /mnt/ext4/c:d"
for b in '' , ',1' '1,' '1,,2' -5 +5 0 ms 1m 5ks 1.5ms 2,1 1,1 1s,500ms 1ms,1 '1 ,2'; do
    refuse "map: --bounds '$b'" "$M --bounds '$b' $f"
    # dmstats refuses the same list and creates nothing either.
    if dmstats create --filemap --nomonitor --bounds "$b" "$f" > /tmp/ds.out 2>&1; then
        note "dmstats accepts --bounds '$b': $(cat /tmp/ds.out)"
        REFUSALS_BAD=$((REFUSALS_BAD + 1))
        dmstats delete --allregions ext4 > /dev/null 2>&1
    fi
done
# Refused here although dmstats takes it (as 2^64-1 ns, by saturating).
refuse "map: --bounds past 2^64 ns" "$M --bounds 99999999999999999999 $f"
nothing "refused maps"
if grep -qw btrfs /proc/filesystems; then
    make_dev btrfs btrfs 256 || fail "cannot make the btrfs device"
    write_mib /mnt/btrfs/f 4
    refuse "map: file on btrfs" "$M /mnt/btrfs/f"
    grep -qi btrfs /tmp/r.err || fail "the btrfs refusal does not name btrfs: $(cat /tmp/r.err)"
    [ -z "$(stats_list btrfs)" ] || fail "regions on btrfs: $(stats_list btrfs)"
    umount /mnt/btrfs
    dmsetup remove btrfs
fi
U="dmfilemapd unmap"
refuse "unmap: no file" "$U"
refuse "unmap: missing file" "$U /mnt/ext4/nothing-here"
refuse "unmap: unknown option" "$U --all $f"
refuse "unmap: --group x" "$U --group x $f"
refuse "unmap: file on tmpfs" "$U /tmp/onfs"
refuse "unmap: --group on a tmpfs file" "$U --group 0 /tmp/onfs"
refuse "unmap: --group on a missing device" "$U --group 0 /dev/mapper/nothing"
refuse "unmap: no group" "$U $f"
refuse "unmap: --group 7, no such region" "$U --group 7 /dev/mapper/ext4"
nothing "refused unmaps"
refusals_done
