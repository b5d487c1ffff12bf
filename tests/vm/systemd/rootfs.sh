#!/usr/bin/env bash
# Builds the root disk image of the systemd VM: a Debian userland made from
# Debian's packages with mmdebstrap (systemd as init, udev, lvm2, xfsprogs,
# e2fsprogs, as a user installs them), with the kernel's modules that a
# system on virtio disks with LVM, ext4 and xfs loads, as an ext4 image.
# Cached under CACHE/systemd-root/ and rebuilt only when this script (its
# package list, its set-up) or the kernel changes. Needs root (mmdebstrap's
# root mode; mke2fs -d keeps the owners it reads).
#
# usage: rootfs.sh CACHE RELEASE KERNEL_DIR KERNEL_VERSION
#   RELEASE 12 (bookworm) or 13 (trixie); KERNEL_DIR is the unpacked
#   linux-image package initramfs.sh fetched. Prints the image's path.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=$(realpath -m "$1")
release=$2
kdir=$3
kver=$4
case $release in
    12) suite=bookworm ;;
    13) suite=trixie ;;
    *) echo "rootfs: no release $release (12 or 13)" >&2; exit 2 ;;
esac
[ "$(id -u)" -eq 0 ] || { echo "rootfs: needs root (mmdebstrap, mke2fs -d)" >&2; exit 1; }

# What a user of the unit has: systemd as PID 1 with udev (device units, LVM
# activation at boot), lvm2 (and so dmsetup/dmstats), the file systems' tools
# (xfs_io, filefrag: the scenarios' helpers), procps (pidof on 13).
packages=systemd-sysv,udev,kmod,procps,lvm2,xfsprogs,e2fsprogs

dir=$cache/systemd-root
mkdir -p "$dir"
stamp=$( (echo "$suite $packages $kver"; sha256sum < "$0") | sha256sum | cut -c1-16)
img=$dir/deb$release-$stamp.img
if [ -f "$img" ]; then
    echo "$img"
    exit 0
fi

. "$here/../suite.sh"
mirror=$(host_mirror) || mirror=""
[ -n "$mirror" ] || { echo "rootfs: no Debian mirror in /etc/apt/sources.list(.d)" >&2; exit 1; }

root=$(mktemp -d "$dir/build.XXXXXX")
trap 'rm -rf "$root" "$img.tmp"' EXIT
echo "rootfs: mmdebstrap $suite ($packages)" >&2
# Documentation and translations are left out: a smaller image, a faster
# boot; nothing here reads them.
mmdebstrap --variant=minbase --mode=root --format=directory --include="$packages" \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    "$suite" "$root" "$mirror" >&2

# The kernel's modules for virtio disks, device-mapper, ext4 and xfs (and
# what they need), where kmod looks for them; depmod for this subset.
mods=$kdir/lib/modules/$kver
[ -d "$mods" ] || mods=$kdir/usr/lib/modules/$kver
dest=$root/usr/lib/modules/$kver
mkdir -p "$dest/kernel/fs" "$dest/kernel/drivers"
for d in drivers/md drivers/block drivers/virtio drivers/char/hw_random fs/ext4 fs/xfs fs/jbd2 \
    fs/mbcache.ko fs/mbcache.ko.xz lib crypto arch; do
    [ -e "$mods/kernel/$d" ] || continue
    mkdir -p "$(dirname "$dest/kernel/$d")"
    cp -a "$mods/kernel/$d" "$dest/kernel/$d"
done
cp "$mods"/modules.builtin* "$mods/modules.order" "$dest/"
depmod -b "$root/usr" "$kver" 2>/dev/null || depmod -b "$root" "$kver"

echo "dmtest" > "$root/etc/hostname"
# The root file system is the first virtio disk (the boot initramfs mounts it).
echo "/dev/vda / ext4 rw,errors=remount-ro 0 1" > "$root/etc/fstab"
# A getty on the serial console hangs up ttyS0 under every other writer
# (the kernel, systemd's status lines, the test's log); there is no VGA.
ln -sf /dev/null "$root/etc/systemd/system/serial-getty@ttyS0.service"
ln -sf /dev/null "$root/etc/systemd/system/getty@tty1.service"
# Timers that would start package and file-system maintenance in the middle
# of a scenario.
for t in apt-daily apt-daily-upgrade dpkg-db-backup e2scrub_all fstrim; do
    ln -sf /dev/null "$root/etc/systemd/system/$t.timer"
done
# The journal kept on disk, so that the second boot can read the first's.
mkdir -p "$root/var/log/journal"

# The test's runner: once the system is up, /t/guest.sh (put there by the
# boot initramfs at every boot) runs this boot's scenarios and powers off.
cat > "$root/etc/systemd/system/dmtest.service" <<'EOF'
[Unit]
Description=dmfilemapd systemd scenarios
After=multi-user.target

[Service]
Type=oneshot
ExecStart=/bin/sh /t/guest.sh
StandardOutput=journal+console
StandardError=journal+console
TimeoutStartSec=infinity

[Install]
WantedBy=multi-user.target
EOF
mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
ln -sf /etc/systemd/system/dmtest.service "$root/etc/systemd/system/multi-user.target.wants/dmtest.service"

# An ext4 image with room for the package and the journal.
rm -f "$img.tmp"
mke2fs -q -t ext4 -L root -d "$root" "$img.tmp" 2G >&2
rm -f "$dir"/deb"$release"-*.img
mv "$img.tmp" "$img"
echo "$img"
