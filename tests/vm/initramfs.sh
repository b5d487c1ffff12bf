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
#
# ARCH amd64 (the default) or arm64. For arm64 everything this machine would
# give (busybox, the tools, Debian 12's dmsetup and their libraries) is
# fetched instead, as Debian 12's arm64 packages (suite.sh, apt state and
# debs under CACHE_DIR/arm64), and unpacked into a staging root whose
# libraries are found from the ELF headers (readelf), not by running ldd.
# The layout of the guest is the same for both.
# Prints the path of the kernel image on stdout. OUT_CPIO_GZ "-": fetch the
# kernel only (tests/vm/systemd/run.sh builds its own initramfs).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=$(realpath -m "$1")
out=$(realpath -m "$2")
release=${3:-12}
arch=${4:-amd64}
mkdir -p "$cache"

bins=(/usr/sbin/dmsetup /usr/sbin/mke2fs /usr/sbin/filefrag /usr/sbin/mkfs.xfs /usr/sbin/xfs_io
      /usr/sbin/mkfs.btrfs /usr/sbin/e4defrag /usr/sbin/xfs_fsr)

# publish TMP DIR: the finished tree TMP becomes DIR, unless another run
# (the cache is shared by every work tree) put it there first: then ours
# goes. `mv -T` renames or fails; a plain mv would move TMP into DIR.
publish() { mv -T "$1" "$2" 2> /dev/null || rm -rf "$1"; }

# elf_libs BIN DIR...: the shared libraries BIN loads, found in the DIRs,
# and theirs (the loader is one: libc names it), one path a line.
elf_libs() {
    local bin=$1 f lib d found
    shift
    local -A seen_lib=()
    local queue=("$bin")
    while [ ${#queue[@]} -gt 0 ]; do
        f=${queue[0]}
        queue=("${queue[@]:1}")
        for lib in $(readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p'); do
            [ -z "${seen_lib[$lib]:-}" ] || continue
            seen_lib[$lib]=1
            found=
            for d in "$@"; do
                [ -e "$d/$lib" ] && { found=$d/$lib; break; }
            done
            [ -n "$found" ] || { echo "initramfs: $lib (needed by $f) not found" >&2; return 1; }
            echo "$found"
            queue+=("$found")
        done
    done
}

case $arch in
amd64) kimage=linux-image-amd64 loader=ld-linux-x86-64.so.2 triplet=x86_64-linux-gnu ;;
arm64)
    kimage=linux-image-arm64 loader=ld-linux-aarch64.so.1 triplet=aarch64-linux-gnu
    . "$here/suite.sh"
    # Debian 12's arm64 busybox, dmsetup and file-system tools, with the
    # libraries they need; not the interpreters some of them recommend or
    # ship scripts for (xfs_scrub_all, e2scrub: not used here).
    user_pkgs=(busybox-static dmsetup e2fsprogs xfsprogs btrfs-progs)
    suite_init bookworm "$cache/arm64/bookworm/apt" arm64
    fetch_user() {
        user_debs=$(suite_fetch $(suite_closure "${user_pkgs[@]}" \
            | grep -vE '^(<|python|libpython|perl|libperl|dpkg$|tar$|install-info$|mailcap$|media-types$|mime-support$|readline-common$)')) \
            && [ -n "$user_debs" ] || return 1
        [ "$release" != 12 ] || { kpkg=$(suite_depends "$kimage") && [ -n "$kpkg" ] && kdeb=$(suite_fetch "$kpkg") && [ -n "$kdeb" ]; }
    }
    fetch_user || { suite_update && fetch_user; } || { echo "initramfs: cannot fetch Debian 12's arm64 packages" >&2; exit 1; }
    stage=$cache/arm64/bookworm/root-$( (cat "$0"; echo "$user_debs") | sha256sum | cut -c1-12)
    if [ ! -d "$stage" ]; then
        tmp=$(mktemp -d "$stage.XXXXXX")
        while read -r deb; do dpkg-deb -x "$deb" "$tmp"; done <<< "$user_debs"
        publish "$tmp" "$stage"
    fi
    # Debian 12 is not merged-/usr: find each tool where its package puts it.
    for i in "${!bins[@]}"; do
        name=$(basename "${bins[$i]}")
        for d in sbin usr/sbin bin usr/bin; do
            [ -x "$stage/$d/$name" ] && { bins[$i]=$stage/$d/$name; break; }
        done
        [ "${bins[$i]}" != "/usr/sbin/$name" ] || { echo "initramfs: no $name in Debian 12's arm64 packages" >&2; exit 1; }
    done
    stage_libdirs=("$stage/lib/$triplet" "$stage/usr/lib/$triplet" "$stage/lib" "$stage/usr/lib")
    ;;
*)
    echo "initramfs: no architecture $arch (amd64 or arm64)" >&2
    exit 2
    ;;
esac

case $release in
12)
    if [ "$arch" = arm64 ]; then
        kver=${kpkg#linux-image-}
        kdir=$cache/arm64/bookworm/$kpkg
        if [ ! -f "$kdir/boot/vmlinuz-$kver" ]; then
            tmp=$(mktemp -d "$kdir.XXXXXX")
            dpkg-deb -x "$kdeb" "$tmp"
            depmod -b "$tmp" "$kver"
            publish "$tmp" "$kdir"
        fi
        stamp=$( (echo "$arch $kver"; sha256sum "$0" "$here/suite.sh"; echo "$user_debs") | sha256sum | cut -c1-16)
    else
    # The kernel: Debian 12's linux-image-amd64 points at the current ABI package.
    kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
    [ -n "$kpkg" ] || { echo "initramfs: cannot resolve linux-image-amd64 (run tests/setup.sh)" >&2; exit 1; }
    kver=${kpkg#linux-image-}
    kdir=$cache/$kpkg
    if [ ! -f "$kdir/boot/vmlinuz-$kver" ]; then
        # In a directory of this run's own: the cache is shared by every
        # work tree, and two runs filling it at once must not delete each
        # other's download or half-unpacked tree.
        tmp=$(mktemp -d "$kdir.XXXXXX")
        chmod 755 "$tmp" # apt's download user writes there
        (cd "$tmp" && apt-get download -q "$kpkg" >&2)
        dpkg-deb -x "$tmp/$kpkg"_*.deb "$tmp/root"
        # The package ships no modules.dep; depmod writes it from the modules.
        depmod -b "$tmp/root" "$kver"
        publish "$tmp/root" "$kdir"
        rm -rf "$tmp"
    fi
    stamp=$( (echo "$kver"; sha256sum "$0" "${bins[@]}") | sha256sum | cut -c1-16)
    fi
    ;;
13)
    . "$here/suite.sh"
    # amd64's apt state keeps its old place (cache/trixie), arm64's is apart.
    t13cache=$cache/trixie
    [ "$arch" = amd64 ] || t13cache=$cache/$arch/trixie
    suite_init trixie "$t13cache/apt" "$arch"
    fetch13() {
        kpkg=$(suite_depends "$kimage") && [ -n "$kpkg" ] || return 1
        tools13=$(suite_fetch $(suite_closure dmsetup)) && [ -n "$tools13" ] || return 1
        kdeb=$(suite_fetch "$kpkg") && [ -n "$kdeb" ]
    }
    # Lists naming versions the mirror has dropped since: fetch them again.
    fetch13 || { suite_update && fetch13; } || { echo "initramfs: cannot fetch Debian 13's packages" >&2; exit 1; }
    kver=${kpkg#linux-image-}
    kdir=$t13cache/$kpkg
    if [ ! -f "$kdir/boot/vmlinuz-$kver" ]; then
        tmp=$(mktemp -d "$kdir.XXXXXX")
        dpkg-deb -x "$kdeb" "$tmp"
        # Debian 13's modules live under /usr/lib/modules (merged /usr).
        depmod -b "$tmp/usr" "$kver"
        publish "$tmp" "$kdir"
    fi
    stamp=$( (echo "$kver"; sha256sum "$0" "$here/suite.sh" "${bins[@]}"; echo "$tools13"; echo "${user_debs:-}") | sha256sum | cut -c1-16)
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

cp "${stage:-}/bin/busybox" "$root/bin/busybox"
# This machine's busybox-static is the same Debian 12 build as the arm64 one:
# its applet list is theirs.
for applet in $(/bin/busybox --list); do
    [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
ln -s /bin/busybox "$root/init"

# copy_with_libs BIN [DIR]: the binary into DIR (/usr/sbin), its libraries
# (this machine's) into /lib and /lib64.
copy_with_libs() {
    local bin=$1
    cp -L "$bin" "$root${2:-/usr/sbin}/"
    if [ "$arch" = arm64 ]; then
        # Flat in /lib: Debian's loader searches it, and finds itself there
        # (PT_INTERP /lib/ld-linux-aarch64.so.1).
        elf_libs "$bin" "${stage_libdirs[@]}" | while read -r lib; do cp -L "$lib" "$root/lib/"; done
        return
    fi
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
    copy_with_libs "${bins[0]}" /opt/bookworm/sbin
    ln -s dmsetup "$root/opt/bookworm/sbin/dmstats"
    # Debian 13's dmsetup and the libraries its own loader resolves for it.
    t13=$root/opt/trixie
    mkdir -p "$t13/sbin" "$t13/bin" "$t13/lib"
    x=$(mktemp -d)
    while read -r deb; do dpkg-deb -x "$deb" "$x"; done <<< "$tools13"
    libdir=$x/usr/lib/$triplet
    cp "$x/usr/sbin/dmsetup" "$t13/sbin/"
    cp -L "$libdir/$loader" "$t13/lib/"
    elf_libs "$x/usr/sbin/dmsetup" "$libdir" | while read -r lib; do cp -L "$lib" "$t13/lib/"; done
    rm -rf "$x"
    # dmsetup acts as dmstats when its argv[0] is named so.
    for tool in dmsetup dmstats; do
        printf '#!/bin/sh\n# Debian 13'\''s %s, on Debian 13'\''s glibc (the rest of the guest runs on Debian 12'\''s).\n%s\n' \
            "$tool" "exec /opt/trixie/lib/$loader --library-path /opt/trixie/lib --argv0 $tool /opt/trixie/sbin/dmsetup \"\$@\"" \
            > "$t13/bin/$tool"
        chmod 0755 "$t13/bin/$tool"
        ln -s "/opt/trixie/bin/$tool" "$root/usr/sbin/$tool"
    done
    # The system's dmstats is Debian 13's: `dmfilemapd map --dialect auto`
    # finds it by the installed libdevmapper's version. A copy of Debian
    # 13's where the loader never looks first (Debian 12's, in /lib, is
    # found before it) says so, as on a system that has both.
    mkdir -p "$root/usr/lib64"
    cp "$t13/lib/libdevmapper.so.1.02.1" "$root/usr/lib64/"
fi
ln -s mke2fs "$root/usr/sbin/mkfs.ext4"
cp "${stage:-}/etc/mke2fs.conf" "$root/etc/"
# Some libraries look here before falling back to the default paths.
echo /lib > "$root/etc/ld.so.conf"

# Modules in load order: each module's dependencies (modules.dep lists them)
# before the module itself. The crypto helpers are soft dependencies that the
# file systems request through modprobe, which this initramfs does not run.
mdir=$kdir/lib/modules/$kver
[ -d "$mdir" ] || mdir=$kdir/usr/lib/modules/$kver
want=(crc32c_generic xxhash_generic blake2b_generic dm-mod loop ext4 xfs btrfs)
# arm64 (qemu's virt machine): the results port is a virtio console
# (/dev/hvc0), and Debian builds its transport and driver as modules; first,
# so that a failure of the rest can be reported. dm-mod needs dax there
# (modules.dep puts it first).
[ "$arch" != arm64 ] || want=(virtio_mmio virtio_console "${want[@]}")
declare -A seen=()
order=()
add_module() {
    local path deps d name
    name=$(echo "$1" | tr - _)
    path=$(find "$mdir/kernel" \( -name "$1.ko" -o -name "$name.ko" -o -name "$1.ko.xz" -o -name "$name.ko.xz" \) | head -1)
    if [ -z "$path" ]; then
        # Built into this kernel (Debian 13's arm64 has virtio_console so).
        grep -qE "/($1|$name)\.ko\$" "$mdir/modules.builtin" && return 0
        echo "initramfs: module $1 not found" >&2
        exit 1
    fi
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
