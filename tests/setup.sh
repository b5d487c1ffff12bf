#!/usr/bin/env bash
# Installs everything the tests need on a fresh Debian 12 machine (waiting for
# the dpkg lock, which a fresh machine's unattended upgrades may hold). Idempotent:
# a second run only checks. Nothing fetched here is committed; the kernel and
# user-space debs for the VM are cached under tests/vm/cache by tests/vm/run.sh
# (Debian 13's, with their own apt lists, under tests/vm/cache/trixie).
set -euo pipefail

# qemu and friends for the VM; mandoc, lintian and systemd (for
# systemd-analyze) check the man page, the .deb and the unit; mmdebstrap
# builds the systemd VM's Debian 12 and 13 userlands (tests/vm/systemd).
# Other architectures (docs/architectures.md): qemu-system-arm (its
# qemu-system-aarch64 boots the arm64 VM), qemu-user-static (runs the
# aarch64, riscv64 and ppc64le test binaries), binutils (readelf finds the
# arm64 guest's libraries), and the riscv64 and ppc64le cross compilers with
# their C libraries (they link those tests).
need_pkgs=(qemu-system-x86 busybox-static cpio xfsprogs e2fsprogs btrfs-progs dmsetup kmod
    mandoc lintian systemd xz-utils mmdebstrap
    qemu-system-arm qemu-user-static binutils
    gcc-riscv64-linux-gnu libc6-dev-riscv64-cross gcc-powerpc64le-linux-gnu libc6-dev-ppc64el-cross)
missing=()
for p in "${need_pkgs[@]}"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' || missing+=("$p")
done

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    $SUDO apt-get -o DPkg::Lock::Timeout=600 update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"
else
    # run.sh downloads debs with apt-get download, which needs package lists.
    if ! ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1; then
        $SUDO apt-get -o DPkg::Lock::Timeout=600 update -q
    fi
fi

# The static musl targets (x86_64, aarch64), and the glibc ones for
# riscv64 and ppc64le, whose musl std rustup does not serve.
for t in x86_64-unknown-linux-musl aarch64-unknown-linux-musl \
    riscv64gc-unknown-linux-gnu powerpc64le-unknown-linux-gnu; do
    if ! rustup target list --installed | grep -qx "$t"; then
        echo "setup: adding the target $t"
        rustup target add "$t"
    fi
done

# nightly's rust-src, for the riscv64 and ppc64le musl checks (build-std).
# An installed nightly is kept as it is: CI takes no surprise update.
if ! rustup run nightly rustc -V > /dev/null 2>&1; then
    echo "setup: installing nightly with rust-src"
    rustup toolchain install nightly --profile minimal --component rust-src
elif ! rustup component list --installed --toolchain nightly | grep -q '^rust-src'; then
    echo "setup: adding rust-src to nightly"
    rustup component add rust-src --toolchain nightly
fi

# Test programs for another architecture start others (the daemon, a copy of
# themselves): binfmt_misc hands those to qemu-user too. Debian's
# qemu-user-static registers its formats only where systemd-binfmt runs at
# boot; a container gets them here, from the same files. The F flag opens
# the interpreter now, so it works in any mount namespace.
binfmt=/proc/sys/fs/binfmt_misc
if [ ! -e "$binfmt/register" ]; then
    $SUDO mount -t binfmt_misc binfmt_misc "$binfmt"
fi
for a in aarch64 riscv64 ppc64le; do
    if [ ! -e "$binfmt/qemu-$a" ]; then
        echo "setup: registering qemu-$a with binfmt_misc"
        $SUDO sh -c "cat /usr/lib/binfmt.d/qemu-$a.conf > $binfmt/register"
    fi
done

# The .deb is built with cargo-deb (a build tool, not a dependency).
if ! cargo deb --version >/dev/null 2>&1; then
    echo "setup: installing cargo-deb"
    cargo install cargo-deb --locked --quiet
fi

echo "setup: ok"
