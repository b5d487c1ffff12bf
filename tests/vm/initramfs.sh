#!/usr/bin/env bash
# Builds the VM's base initramfs: busybox, Debian's kernel modules for dm, loop,
# ext4, xfs and btrfs, and Debian's dmsetup/dmstats, e2fsprogs, xfsprogs and
# btrfs-progs with the shared libraries they load. The project's binary and the
# test scripts go into a second, small archive that run.sh appends per run, so
# this one is rebuilt only when the kernel or this script changes.
#
# usage: initramfs.sh CACHE_DIR OUT_CPIO_GZ
# Prints the path of the kernel image on stdout.
set -euo pipefail

cache=$(realpath -m "$1")
out=$(realpath -m "$2")
mkdir -p "$cache"

# The kernel: Debian 12's linux-image-amd64 points at the current ABI package.
kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[ -n "$kpkg" ] || { echo "initramfs: cannot resolve linux-image-amd64 (run tests/setup.sh)" >&2; exit 1; }
kver=${kpkg#linux-image-}
kdir=$cache/$kpkg
if [ ! -f "$kdir/boot/vmlinuz-$kver" ]; then
    (cd "$cache" && rm -f "$kpkg"_*.deb && apt-get download -q "$kpkg" >&2)
    rm -rf "$kdir.tmp"
    dpkg-deb -x "$cache/$kpkg"_*.deb "$kdir.tmp"
    # The package ships no modules.dep; depmod writes it from the modules.
    depmod -b "$kdir.tmp" "$kver"
    mv "$kdir.tmp" "$kdir"
fi
kernel=$kdir/boot/vmlinuz-$kver

bins=(/usr/sbin/dmsetup /usr/sbin/mke2fs /usr/sbin/filefrag /usr/sbin/mkfs.xfs /usr/sbin/xfs_io
      /usr/sbin/mkfs.btrfs /usr/sbin/e4defrag /usr/sbin/xfs_fsr)
stamp=$( (echo "$kver"; sha256sum "$0" "${bins[@]}") | sha256sum | cut -c1-16)
if [ -f "$out" ] && [ "$(cat "$out.stamp" 2>/dev/null)" = "$stamp" ]; then
    echo "$kernel"
    exit 0
fi

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,lib,lib64,etc,proc,sys,dev,tmp,mnt,run,root}
ln -s lib "$root/usr/lib" 2>/dev/null || true

cp /bin/busybox "$root/bin/busybox"
for applet in $(/bin/busybox --list); do
    [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
ln -s /bin/busybox "$root/init"

copy_with_libs() {
    local bin=$1
    cp -L "$bin" "$root/usr/sbin/"
    ldd "$bin" | awk '/=> \// {print $3} /^\t\/lib64/ {print $1}' | while read -r lib; do
        case $lib in
            /lib64/*) cp -L "$lib" "$root/lib64/" ;;
            *) cp -L "$lib" "$root/lib/" ;;
        esac
    done
}
for b in "${bins[@]}"; do copy_with_libs "$b"; done
ln -s dmsetup "$root/usr/sbin/dmstats"
ln -s mke2fs "$root/usr/sbin/mkfs.ext4"
cp /etc/mke2fs.conf "$root/etc/"
# Some libraries look here before falling back to the default paths.
echo /lib > "$root/etc/ld.so.conf"

# Modules in load order: each module's dependencies (modules.dep lists them)
# before the module itself. The crypto helpers are soft dependencies that the
# file systems request through modprobe, which this initramfs does not run.
mdir=$kdir/lib/modules/$kver
want=(crc32c_generic xxhash_generic blake2b_generic dm-mod loop ext4 xfs btrfs)
declare -A seen=()
order=()
add_module() {
    local path deps d
    path=$(find "$mdir/kernel" -name "$1.ko" -o -name "$(echo "$1" | tr - _).ko" | head -1)
    [ -n "$path" ] || { echo "initramfs: module $1 not found" >&2; exit 1; }
    path=${path#"$mdir/"}
    [ -z "${seen[$path]:-}" ] || return 0
    seen[$path]=1
    deps=$(awk -v m="$path:" '$1 == m { $1 = ""; print }' "$mdir/modules.dep")
    # modules.dep lists the deepest dependency last.
    for d in $(echo "$deps" | tr ' ' '\n' | tac); do
        [ -n "${seen[$d]:-}" ] && continue
        seen[$d]=1
        order+=("$d")
    done
    order+=("$path")
}
for m in "${want[@]}"; do add_module "$m"; done
mkdir -p "$root/lib/modules"
: > "$root/lib/modules/order"
for m in "${order[@]}"; do
    cp "$mdir/$m" "$root/lib/modules/"
    basename "$m" >> "$root/lib/modules/order"
done

cat > "$root/etc/inittab" <<'EOF'
::sysinit:/bin/sh /t/boot.sh
EOF

(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) | gzip -1 > "$out.tmp"
mv "$out.tmp" "$out"
echo "$stamp" > "$out.stamp"
echo "$kernel"
