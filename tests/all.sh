#!/usr/bin/env bash
# The one test command (what .ci/run calls): sets the machine up, then runs the
# unit and fake-kernel tests, the fuzz smoke run (if present), checks the man
# page, builds the Debian package (lintian, systemd-analyze verify on its
# unit) and runs the VM scenarios against the real kernel, Debian 12's and
# Debian 13's, with the binary taken from that package, then the package
# itself on Debian 12 and 13 systems booted with systemd. Exits non-zero if
# any part fails.
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
# steps after it; its path in $deb_file (the systemd VM installs it).
deb_root=target/deb-root
deb_file=""
deb_package() {
    local deb out rc f
    rm -rf "$deb_root"
    deb=$(cargo deb --locked --strip --target x86_64-unknown-linux-musl | tail -n 1) || return 1
    echo "deb: $deb"
    deb_file=$deb
    out=$(lintian --fail-on error "$deb" 2>&1)
    rc=$?
    grep -v 'running with root privileges' <<< "$out"
    [ $rc -eq 0 ] || { echo "deb: lintian reports errors"; return 1; }
    dpkg-deb -x "$deb" "$deb_root" || return 1
    for f in usr/sbin/dmfilemapd usr/share/man/man8/dmfilemapd.8.gz \
        usr/lib/systemd/system/dmfilemapd@.service usr/share/doc/dmfilemapd/copyright; do
        [ -f "$deb_root/$f" ] || { echo "deb: no /$f"; return 1; }
    done
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

if [ "${#failed[@]}" -gt 0 ]; then
    echo "all: FAILED: ${failed[*]}"
    exit 1
fi
echo "all: ok"
