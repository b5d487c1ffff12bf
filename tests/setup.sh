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
need_pkgs=(qemu-system-x86 busybox-static cpio xfsprogs e2fsprogs btrfs-progs dmsetup kmod
    mandoc lintian systemd xz-utils mmdebstrap)
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

if ! rustup target list --installed | grep -qx x86_64-unknown-linux-musl; then
    echo "setup: adding the musl target"
    rustup target add x86_64-unknown-linux-musl
fi

# The .deb is built with cargo-deb (a build tool, not a dependency).
if ! cargo deb --version >/dev/null 2>&1; then
    echo "setup: installing cargo-deb"
    cargo install cargo-deb --locked --quiet
fi

echo "setup: ok"
