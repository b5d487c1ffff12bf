#!/usr/bin/env bash
# Builds the VM's base initramfs: busybox, Debian's kernel modules for dm, loop,
# ext4, xfs and btrfs, and Debian's dmsetup/dmstats, e2fsprogs, xfsprogs and
# btrfs-progs with the shared libraries they load. The project's binary and the
# test scripts go into a second, small archive that run.sh appends per run, so
# this one is rebuilt only when the kernel or this script changes.
#
# usage: initramfs.sh CACHE_DIR OUT_CPIO_GZ [RELEASE]
# RELEASE 12 (the default): Debian 12's kernel, and this (Debian 12) machine's
# dmsetup and tools. RELEASE 13: Debian 13's kernel and its dmsetup/dmstats
# (lvm2 2.03.31), fetched through suite.sh; they run on Debian 13's glibc, so
# they live apart under /opt/trixie with their own loader and libraries, and
# /usr/sbin/dmsetup and dmstats are wrappers that call them. The other tools
# are this machine's; its dmsetup stays as /opt/bookworm/sbin/dmsetup (both
# releases' dmstats in one guest, for the dialects scenario).
# Prints the path of the kernel image on stdout. OUT_CPIO_GZ "-": fetch the
# kernel only (tests/vm/systemd/run.sh builds its own initramfs).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=$(realpath -m "$1")
out=$(realpath -m "$2")
release=${3:-12}
mkdir -p "$cache"

bins=(/usr/sbin/dmsetup /usr/sbin/mke2fs /usr/sbin/filefrag /usr/sbin/mkfs.xfs /usr/sbin/xfs_io
      /usr/sbin/mkfs.btrfs /usr/sbin/e4defrag /usr/sbin/xfs_fsr)

case $release in
12)
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
    stamp=$( (echo "$kver"; sha256sum "$0" "${bins[@]}") | sha256sum | cut -c1-16)
    ;;
13)
    . "$here/suite.sh"
    suite_init trixie "$cache/trixie/apt"
    fetch13() {
        kpkg=$(suite_depends linux-image-amd64) && [ -n "$kpkg" ] || return 1
        tools13=$(suite_fetch $(suite_closure dmsetup)) && [ -n "$tools13" ] || return 1
        kdeb=$(suite_fetch "$kpkg") && [ -n "$kdeb" ]
    }
    # Lists naming versions the mirror has dropped since: fetch them again.
    fetch13 || { suite_update && fetch13; } || { echo "initramfs: cannot fetch Debian 13's packages" >&2; exit 1; }
    kver=${kpkg#linux-image-}
    kdir=$cache/trixie/$kpkg
    if [ ! -f "$kdir/boot/vmlinuz-$kver" ]; then
        tmp=$(mktemp -d "$kdir.XXXXXX")
        dpkg-deb -x "$kdeb" "$tmp"
        # Debian 13's modules live under /usr/lib/modules (merged /usr).
        depmod -b "$tmp/usr" "$kver"
        mv "$tmp" "$kdir"
    fi
    stamp=$( (echo "$kver"; sha256sum "$0" "$here/suite.sh" "${bins[@]}"; echo "$tools13") | sha256sum | cut -c1-16)
    ;;
*)
    echo "initramfs: no release $release (12 or 13)" >&2
    exit 2
    ;;
esac
kernel=$kdir/boot/vmlinuz-$kver
[ "$2" != - ] || { echo "$kernel"; exit 0; }

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

# copy_with_libs BIN [DIR]: the binary into DIR (/usr/sbin), its libraries
# (this machine's) into /lib and /lib64.
copy_with_libs() {
    local bin=$1
    cp -L "$bin" "$root${2:-/usr/sbin}/"
    ldd "$bin" | awk '/=> \// {print $3} /^\t\/lib64/ {print $1}' | while read -r lib; do
        case $lib in
            /lib64/*) cp -L "$lib" "$root/lib64/" ;;
            *) cp -L "$lib" "$root/lib/" ;;
        esac
    done
}
if [ "$release" = 12 ]; then
    for b in "${bins[@]}"; do copy_with_libs "$b"; done
    ln -s dmsetup "$root/usr/sbin/dmstats"
else
    for b in "${bins[@]:1}"; do copy_with_libs "$b"; done
    mkdir -p "$root/opt/bookworm/sbin"
    copy_with_libs /usr/sbin/dmsetup /opt/bookworm/sbin
    ln -s dmsetup "$root/opt/bookworm/sbin/dmstats"
    # Debian 13's dmsetup and the libraries its own loader resolves for it.
    t13=$root/opt/trixie
    mkdir -p "$t13/sbin" "$t13/bin" "$t13/lib"
    x=$(mktemp -d)
    while read -r deb; do dpkg-deb -x "$deb" "$x"; done <<< "$tools13"
    libdir=$x/usr/lib/x86_64-linux-gnu
    cp "$x/usr/sbin/dmsetup" "$t13/sbin/"
    cp -L "$libdir/ld-linux-x86-64.so.2" "$t13/lib/"
    "$libdir/ld-linux-x86-64.so.2" --library-path "$libdir" --list "$x/usr/sbin/dmsetup" \
        | awk '/=> \// { print $3 }' | while read -r lib; do cp -L "$lib" "$t13/lib/"; done
    rm -rf "$x"
    # dmsetup acts as dmstats when its argv[0] is named so.
    for tool in dmsetup dmstats; do
        printf '#!/bin/sh\n# Debian 13'\''s %s, on Debian 13'\''s glibc (the rest of the guest runs on Debian 12'\''s).\n%s\n' \
            "$tool" "exec /opt/trixie/lib/ld-linux-x86-64.so.2 --library-path /opt/trixie/lib --argv0 $tool /opt/trixie/sbin/dmsetup \"\$@\"" \
            > "$t13/bin/$tool"
        chmod 0755 "$t13/bin/$tool"
        ln -s "/opt/trixie/bin/$tool" "$root/usr/sbin/$tool"
    done
fi
ln -s mke2fs "$root/usr/sbin/mkfs.ext4"
cp /etc/mke2fs.conf "$root/etc/"
# Some libraries look here before falling back to the default paths.
echo /lib > "$root/etc/ld.so.conf"

# Modules in load order: each module's dependencies (modules.dep lists them)
# before the module itself. The crypto helpers are soft dependencies that the
# file systems request through modprobe, which this initramfs does not run.
mdir=$kdir/lib/modules/$kver
[ -d "$mdir" ] || mdir=$kdir/usr/lib/modules/$kver
want=(crc32c_generic xxhash_generic blake2b_generic dm-mod loop ext4 xfs btrfs)
declare -A seen=()
order=()
add_module() {
    local path deps d name
    name=$(echo "$1" | tr - _)
    path=$(find "$mdir/kernel" \( -name "$1.ko" -o -name "$name.ko" -o -name "$1.ko.xz" -o -name "$name.ko.xz" \) | head -1)
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
    case $m in
        # Debian 13's are xz-compressed; busybox's insmod loads plain ones.
        *.xz) xz -dc "$mdir/$m" > "$root/lib/modules/$(basename "$m" .xz)" ;;
        *) cp "$mdir/$m" "$root/lib/modules/" ;;
    esac
    basename "$m" .xz >> "$root/lib/modules/order"
done

cat > "$root/etc/inittab" <<'EOF'
::sysinit:/bin/sh /t/boot.sh
EOF

(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) | gzip -1 > "$out.tmp"
mv "$out.tmp" "$out"
echo "$stamp" > "$out.stamp"
echo "$kernel"
