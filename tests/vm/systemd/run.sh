#!/usr/bin/env bash
# The systemd VM: the .deb installed as users install it, on a Debian 12 or
# 13 system booted with systemd as PID 1, LVM on a second virtio disk, booted
# twice. See tests/vm/README.md ("The systemd VM") and docs/systemd.md.
#
# Boots the release's kernel under qemu with two virtio disks: vda, the root
# file system (rootfs.sh's cached image, copied for this run), and vdb, blank,
# for LVM. A small busybox initramfs loads the virtio and ext4 modules,
# copies this run's /t (the scenarios, lib.sh, the .deb) onto the root and
# hands over to /lib/systemd/systemd. The root's dmtest.service runs
# /t/guest.sh once the system is up: the scenarios of this boot, results on
# the second serial port, then poweroff. Boot 1 runs the scenarios marked
# "# systemd-boot: 1", boot 2 (the same disks) those marked 2.
# Prints "PASS name" / "FAIL name: why" and "N passed, N failed".
#
# usage: tests/vm/systemd/run.sh [SCENARIO ...]   (default: all of the release)
# env:   VM_RELEASE=12|13  Debian 12 (the default) or 13
#        DMFILEMAPD_DEB=path  install this .deb (default: cargo deb builds one)
#        VM_SHOW=1        print the consoles (also kept in tests/vm/work/systemdNN)
#        VM_TCG_THREAD=single|multi  qemu's TCG threads (default single; see
#                         ../run.sh)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
vm=$(cd "$here/.." && pwd)
repo=$(cd "$vm/../.." && pwd)
cache=$vm/cache
release=${VM_RELEASE:-12}
case $release in 12 | 13) ;; *) echo "systemd/run.sh: VM_RELEASE=$release: only 12 or 13" >&2; exit 2 ;; esac
work=$vm/work/systemd$release
mkdir -p "$cache" "$work"

scenarios=()
if [ $# -eq 0 ]; then
    for f in "$here"/scenarios/*.sh; do
        only=$(sed -n 's/^# vm-release: *//p' "$f")
        case " ${only:-$release} " in *" $release "*) ;; *) echo "vm: skipping $(basename "$f" .sh) (Debian $only only)"; continue ;; esac
        scenarios+=("$f")
    done
else
    for a in "$@"; do scenarios+=("$here/scenarios/$a.sh"); done
fi
for f in "${scenarios[@]}"; do
    [ -f "$f" ] || { echo "systemd/run.sh: no scenario $f" >&2; exit 2; }
done

t0=$(date +%s.%N)
if [ -z "${DMFILEMAPD_DEB:-}" ]; then
    DMFILEMAPD_DEB=$(cd "$repo" && cargo deb --locked --strip --target x86_64-unknown-linux-musl | tail -n 1)
fi
[ -f "$DMFILEMAPD_DEB" ] || { echo "systemd/run.sh: no package at $DMFILEMAPD_DEB" >&2; exit 2; }

kernel=$(bash "$vm/initramfs.sh" "$cache" - "$release")
kdir=${kernel%/boot/*}
kver=${kernel##*/vmlinuz-}
base=$(bash "$here/rootfs.sh" "$cache" "$release" "$kdir" "$kver")

# The boot initramfs: busybox, the modules that mount the root, this run's /t.
mods=$kdir/lib/modules/$kver
[ -d "$mods" ] || mods=$kdir/usr/lib/modules/$kver
boot=$(mktemp -d)
trap 'rm -rf "$boot"' EXIT
mkdir -p "$boot"/{bin,dev,proc,sys,newroot,lib/modules,t/scenarios}
cp /bin/busybox "$boot/bin/busybox"
for applet in sh mount umount insmod sleep cp rm switch_root cat; do ln -s busybox "$boot/bin/$applet"; done
declare -A seen=()
order=()
# Each module after the ones modules.dep says it needs (deepest listed last).
add_module() {
    local path d
    path=$(cd "$mods" && find kernel \( -name "$1.ko" -o -name "$1.ko.xz" \) | head -n 1)
    [ -n "$path" ] || return 0 # built in (virtio_pci on 13)
    for d in $(awk -v m="$path:" '$1 == m { $1 = ""; print }' "$mods/modules.dep" | tr ' ' '\n' | tac) "$path"; do
        [ -n "${seen[$d]:-}" ] && continue
        seen[$d]=1
        order+=("$d")
    done
}
# crc32c: ext4's metadata checksums ask the crypto API for it, through a
# modprobe this initramfs does not have.
for m in virtio_pci virtio_blk crc32c_generic ext4; do add_module "$m"; done
for m in "${order[@]}"; do
    case $m in
        *.xz) xz -dc "$mods/$m" > "$boot/lib/modules/$(basename "$m" .xz)" ;;
        *) cp "$mods/$m" "$boot/lib/modules/" ;;
    esac
    basename "$m" .xz >> "$boot/lib/modules/order"
done
cat > "$boot/init" <<'EOF'
#!/bin/sh
mount -t proc proc /proc
mount -t devtmpfs dev /dev
for m in $(cat /lib/modules/order); do insmod "/lib/modules/$m"; done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
mount -t ext4 -o rw /dev/vda /newroot || { echo "boot: cannot mount /dev/vda"; sleep 2; exit 1; }
rm -rf /newroot/t
cp -a /t /newroot/t
umount /dev
umount /proc
exec switch_root /newroot /lib/systemd/systemd
EOF
chmod +x "$boot/init"
cp "$here/guest.sh" "$here/sd.sh" "$vm/guest/lib.sh" "$boot/t/"
cp "$DMFILEMAPD_DEB" "$boot/t/dmfilemapd.deb"
: > "$boot/t/list"
for f in "${scenarios[@]}"; do
    cp "$f" "$boot/t/scenarios/"
    basename "$f" .sh >> "$boot/t/list"
done
printf 'VM_RELEASE=%s\nVM_FILEMAP=%s\n' "$release" "$([ "$release" = 12 ] && echo dmstats || echo map)" > "$boot/t/env"
(cd "$boot" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -1) > "$work/boot.cpio.gz"

# This run's disks: a copy of the root image, a blank disk for LVM.
rm -f "$work"/root.img "$work"/state.img "$work"/console*.log "$work"/results*.log
cp --sparse=always "$base" "$work/root.img"
truncate -s 4G "$work/state.img"
t_ready=$(date +%s.%N)

# Software emulation on a busy machine (measured: load 20 on 2 cores) takes
# systemd past its 90 s default wait for a device (the LVs, activated by
# udev) or a service: the second boot then ends in emergency mode. The
# waits are ten minutes here; a boot still has run.sh's guard. The same
# load once failed the kernel's early check that the PIT timer reaches the
# IO-APIC ("IO-APIC + timer doesn't work!", a panic at 0.05 s):
# no_timer_check skips it, as it is skipped on most virtual machines.
slow="systemd.default_device_timeout_sec=600 systemd.default_timeout_start_sec=600 no_timer_check"

# boot N GUARD: one boot; its results in results$N.log. One TCG thread
# for both vCPUs unless VM_TCG_THREAD says otherwise, as in ../run.sh
# (../README.md, "One TCG thread").
boot_vm() {
    local n=$1 guard=$2 rc
    set +e
    timeout -k 10 "$guard" qemu-system-x86_64 \
        -machine q35 -accel "tcg,thread=${VM_TCG_THREAD:-single}" -cpu max -smp 2 -m 2G \
        -nodefaults -no-user-config -display none -no-reboot \
        -kernel "$kernel" -initrd "$work/boot.cpio.gz" \
        -append "console=ttyS0 rdinit=/init panic=-1 loglevel=4 mitigations=off dmtest.boot=$n $slow" \
        -drive "file=$work/root.img,format=raw,if=virtio" \
        -drive "file=$work/state.img,format=raw,if=virtio" \
        -serial "file:$work/console$n.log" -serial "file:$work/results$n.log" \
        > "$work/qemu$n.log" 2>&1
    rc=$?
    set -e
    return $rc
}

# A boot's time limit: its scenarios' and 10 min for the boot and the
# shutdown (a loaded machine took a second boot 310 s to multi-user.target).
guard() {
    local n=$1 total=600 f limit
    for f in "${scenarios[@]}"; do
        [ "$(sed -n 's/^# systemd-boot: *//p' "$f")" = "$n" ] || continue
        limit=$(sed -n 's/^# vm-timeout: *//p' "$f")
        total=$((total + ${limit:-60}))
    done
    echo "$total"
}

passed=0
failed=0
declare -A took=()
for n in 1 2; do
    g=$(guard "$n")
    echo "vm: boot $n of Debian $release ($(basename "$kernel")), guard ${g}s"
    tb=$(date +%s.%N)
    boot_vm "$n" "$g" && qrc=0 || qrc=$?
    took[$n]=$(awk -v a="$tb" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    [ "${VM_SHOW:-0}" != 1 ] || tr -d '\r' < "$work/console$n.log"
    results=$(tr -d '\r' < "$work/results$n.log" 2>/dev/null || true)
    while IFS= read -r line; do
        case $line in
            "PASS "*) passed=$((passed + 1)); echo "$line" ;;
            "FAIL "*) failed=$((failed + 1)); echo "$line" ;;
            DONE) ;;
            "") ;;
            *) echo "  $line" ;;
        esac
    done <<< "$results"
    for f in "${scenarios[@]}"; do
        [ "$(sed -n 's/^# systemd-boot: *//p' "$f")" = "$n" ] || continue
        name=$(basename "$f" .sh)
        if ! grep -qE "^(PASS|FAIL) $name( |:)" <<< "$results"; then
            echo "FAIL $name: no result (the VM stopped before it finished)"
            failed=$((failed + 1))
        fi
    done
    if ! grep -qx DONE <<< "$results"; then
        echo "vm: boot $n did not finish (qemu exit $qrc); last console lines:"
        tr -d '\r' < "$work/console$n.log" | tail -n 30 | sed 's/^/  /'
        [ $failed -gt 0 ] || failed=1
    fi
done
awk -v a="$t0" -v b="$t_ready" -v c="${took[1]}" -v d="${took[2]}" -v where="${work#"$repo/"}" \
    'BEGIN { printf "vm: package, kernel, images %.1f s; boot 1 %.1f s, boot 2 %.1f s (consoles: %s)\n", b - a, c, d, where }'
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
