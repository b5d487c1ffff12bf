# Helpers of the systemd scenarios (dash), on top of ../guest/lib.sh: the
# LVM volumes, the files the units keep mapped, the units' state.

VG=dmt
# One file per file system, each on its own logical volume.
F_EXT4=/srv/ext4/vm.img
F_XFS=/srv/xfs/db.img

# The dm name of the LV holding FILE (what dmsetup message takes).
lv_dev() {
    case $1 in
        /srv/ext4/*) echo "$VG-ext4" ;;
        /srv/xfs/*) echo "$VG-xfs" ;;
        *) echo "lv_dev: no LV for $1" >&2; return 1 ;;
    esac
}

unit_of() { echo "dmfilemapd@$(systemd-escape --path "$1").service"; }

# prop UNIT PROPERTY: one property's value.
prop() { systemctl show -p "$2" --value "$1"; }

# expect_active UNIT: active (running) within 10 s; prints its main pid.
expect_active() {
    local i pid
    i=0
    while [ "$(prop "$1" ActiveState)/$(prop "$1" SubState)" != active/running ]; do
        [ $i -lt 100 ] || fail "$1 is $(prop "$1" ActiveState)/$(prop "$1" SubState): $(journalctl -b -u "$1" -o cat | tail -n 5 | tr '\n' '|')"
        sleep 0.1
        i=$((i + 1))
    done
    pid=$(prop "$1" MainPID)
    [ "$(cat "/proc/$pid/comm" 2> /dev/null)" = dmfilemapd ] || fail "$1's main process $pid is not dmfilemapd"
    echo "$pid"
}

# wait_inactive UNIT: the unit leaves active/deactivating within 20 s (a
# daemon that must notice something at its check, every 10 s, included).
wait_inactive() {
    local i
    i=0
    while :; do
        case $(prop "$1" ActiveState) in inactive | failed) return 0 ;; esac
        [ $i -lt 200 ] || fail "$1 still $(prop "$1" ActiveState) after 20 s"
        sleep 0.1
        i=$((i + 1))
    done
}

# The regions of ours (program dmstats) on DEV that no descriptor names;
# fails when a descriptor names a missing region.
outside() { ks_outside "$1" "" || fail "a descriptor on $1 names a missing region"; }
