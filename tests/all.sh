#!/usr/bin/env bash
# The one test command (what .ci/run calls): sets the machine up, then runs the
# unit and fake-kernel tests, the fuzz smoke run (if present), checks the man
# page, builds the Debian package (lintian, systemd-analyze verify on its
# unit) and runs the VM scenarios against the real kernel, Debian 12's and
# Debian 13's, with the binary taken from that package, and the package
# itself on Debian 12 and 13 systems booted with systemd. Then the other
# architectures (docs/architectures.md): aarch64's package and tests (under
# qemu-user) and the VM on Debian's arm64 kernel; riscv64's and ppc64le's
# tests under qemu-user (glibc targets) and their musl targets checked with
# nightly's build-std. Each step prints its time. Exits non-zero if any part
# fails.
set -uo pipefail
cd "$(dirname "$0")/.."

failed=()
step() {
    local name=$1
    shift
    echo "=== $name"
    local t0=$SECONDS
    if "$@"; then
        echo "=== $name: ok ($((SECONDS - t0)) s)"
    else
        echo "=== $name: FAILED ($((SECONDS - t0)) s)"
        failed+=("$name")
    fi
}

step setup bash tests/setup.sh || true
if [ "${#failed[@]}" -gt 0 ]; then
    echo "all: set-up failed, not running the tests"
    exit 1
fi
# mandoc's lint prints nothing for a clean page. A page named in SEE ALSO
# that this machine lacks (a container without man pages) is not ours to fix.
man_page() {
    local out missing
    out=$(mandoc -T lint man/dmfilemapd.8 2> /dev/null)
    missing=$(grep 'STYLE: referenced manual not found' <<< "$out")
    out=$(grep -v 'STYLE: referenced manual not found' <<< "$out")
    [ -z "$missing" ] || echo "man: not installed here: $(sed 's/.*: Xr //' <<< "$missing" | tr '\n' ' ')"
    [ -z "$out" ] || { echo "$out"; return 1; }
    man -l man/dmfilemapd.8 > /dev/null
}

# The .deb, checked by lintian (no error), extracted into $deb_root for the
# steps after it; the x86_64 package's path in $deb_file (the systemd VM
# installs it).
# deb_package [TARGET [ROOT]]: x86_64 and $deb_root by default.
deb_root=target/deb-root
deb_file=""
deb_package() {
    local deb out rc f target=${1:-x86_64-unknown-linux-musl} root=${2:-$deb_root}
    rm -rf "$root"
    # The release profile strips; --strip would want a strip for the target.
    deb=$(cargo deb --locked --target "$target" | tail -n 1) || return 1
    echo "deb: $deb"
    [ "$target" != x86_64-unknown-linux-musl ] || deb_file=$deb
    out=$(lintian --fail-on error "$deb" 2>&1)
    rc=$?
    grep -v 'running with root privileges' <<< "$out"
    [ $rc -eq 0 ] || { echo "deb: lintian reports errors"; return 1; }
    dpkg-deb -x "$deb" "$root" || return 1
    for f in usr/sbin/dmfilemapd usr/share/man/man8/dmfilemapd.8.gz \
        usr/lib/systemd/system/dmfilemapd@.service usr/share/doc/dmfilemapd/copyright; do
        [ -f "$root/$f" ] || { echo "deb: no /$f"; return 1; }
    done
    ls -l "$root/usr/sbin/dmfilemapd"
}

# systemd-analyze verify and security on an instance of the packaged unit,
# its commands pointed into the extracted package; needs no systemd running
# as PID 1.
systemd_unit() {
    local dir unit out rc
    dir=$(mktemp -d)
    unit="dmfilemapd@$(systemd-escape --path /srv/images/vm.img).service"
    sed "s|/usr/sbin/dmfilemapd|$PWD/$deb_root/usr/sbin/dmfilemapd|g" \
        "$deb_root/usr/lib/systemd/system/dmfilemapd@.service" > "$dir/dmfilemapd@.service"
    ln -s dmfilemapd@.service "$dir/$unit"
    out=$(MANPATH=$PWD/$deb_root/usr/share/man systemd-analyze verify "$dir/$unit" 2>&1)
    rc=$?
    [ -z "$out" ] || echo "$out"
    # The sandbox (docs/systemd.md): exposure 2.0 at most (--threshold is
    # in tenths). The VM's scenarios run under it.
    (cd "$dir" && systemd-analyze security --offline=true --threshold=20 "$unit" > sec.txt 2>&1)
    sec=$?
    echo "unit: $(tail -n 1 "$dir/sec.txt")"
    [ $sec -eq 0 ] || { grep '✗' "$dir/sec.txt"; echo "unit: exposure above 2.0"; }
    rm -rf "$dir"
    [ $rc -eq 0 ] && [ -z "$out" ] && [ $sec -eq 0 ]
}

step "cargo test" cargo test --all-targets
[ -f tests/fuzz.sh ] && step fuzz bash tests/fuzz.sh
step "man page" man_page
step deb deb_package
bin=()
if [ -x "$deb_root/usr/sbin/dmfilemapd" ]; then
    step "systemd unit" systemd_unit
    # The VM runs use the binary as the package installs it.
    bin=(DMFILEMAPD="$PWD/$deb_root/usr/sbin/dmfilemapd")
else
    echo "all: no package binary; the VM runs a fresh build"
fi
step "vm (Debian 12)" env "${bin[@]}" bash tests/vm/run.sh
step "vm (Debian 13)" env "${bin[@]}" VM_RELEASE=13 bash tests/vm/run.sh
# The package installed with dpkg -i on a Debian system booted with systemd,
# LVM on a second disk, booted twice (tests/vm/systemd).
sd=()
[ -z "$deb_file" ] || sd=(DMFILEMAPD_DEB="$deb_file")
step "vm systemd (Debian 12)" env "${sd[@]}" VM_RELEASE=12 bash tests/vm/systemd/run.sh
step "vm systemd (Debian 13)" env "${sd[@]}" VM_RELEASE=13 bash tests/vm/systemd/run.sh

# aarch64: the package, the tests under qemu-user, the VM on Debian's arm64
# kernel with the packaged binary.
arm64_root=target/deb-root-arm64
step "deb (arm64)" deb_package aarch64-unknown-linux-musl "$arm64_root"
step "cargo test (aarch64, qemu-user)" cargo test --all-targets --target aarch64-unknown-linux-musl
bin=()
if [ -x "$arm64_root/usr/sbin/dmfilemapd" ]; then
    bin=(DMFILEMAPD="$PWD/$arm64_root/usr/sbin/dmfilemapd")
fi
step "vm arm64 (Debian 13)" env "${bin[@]}" VM_ARCH=arm64 VM_RELEASE=13 bash tests/vm/run.sh
# Debian 12 on arm64: a named subset (growth, shrink, tiling, map, unmap,
# stop), as the whole suite there takes as long again as Debian 13's; the
# full run is `VM_ARCH=arm64 tests/vm/run.sh` (docs/architectures.md).
arm64_12=(basic_dm growth_ext4 growth_xfs shrink_ext4 tile_growth_ext4 map_basic unmap sigterm
    member_deleted group_deleted)
step "vm arm64 (Debian 12, subset)" env "${bin[@]}" VM_ARCH=arm64 bash tests/vm/run.sh "${arm64_12[@]}"

# riscv64 and ppc64le: tests under qemu-user on the glibc targets (the same
# raw system calls; rustup has their std), and the musl targets compiled
# with nightly's build-std, tests included (the layout and ioctl numbers are
# const assertions). The unit tests and those of real processes (signals,
# detaching, /proc); the fake-kernel suites, the same code as on aarch64 and
# x86_64, would take four times as long under emulation (they pass: see
# docs/architectures.md).
emulated_tests=(--lib --test wait --test cli --test daemon --test system --test map_cli)
step "cargo test (riscv64, qemu-user)" \
    cargo test --locked "${emulated_tests[@]}" --target riscv64gc-unknown-linux-gnu
# ppc64le's tests under qemu-user need nightly's std built unoptimized and
# take a quarter of an hour under emulation: run offline (docs/architectures.md:
# cargo +nightly test -Zbuild-std=std,panic_abort --target
# powerpc64le-unknown-linux-gnu); CI compiles them below, with the layout
# and ioctl-number assertions.
for t in riscv64gc-unknown-linux-musl powerpc64le-unknown-linux-musl; do
    step "check $t (nightly build-std)" \
        cargo +nightly check --locked --all-targets -Zbuild-std=std,panic_abort --target "$t"
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "all: FAILED: ${failed[*]}"
    exit 1
fi
echo "all: ok"
