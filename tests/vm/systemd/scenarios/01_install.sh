# systemd-boot: 1
# vm-timeout: 180
# The package as users install it: dpkg -i (its maintainer scripts run),
# the unit where the release's systemd finds it, the binary on PATH.
run dpkg -i /t/dmfilemapd.deb
unit=/usr/lib/systemd/system/dmfilemapd@.service
[ -f "$unit" ] || fail "no $unit: $(dpkg -L dmfilemapd | grep systemd | tr '\n' ' ')"
[ "$(command -v dmfilemapd)" = /usr/sbin/dmfilemapd ] || fail "dmfilemapd on PATH is $(command -v dmfilemapd)"
systemctl cat dmfilemapd@x.service > /dev/null || fail "systemd does not find the template unit"
note "$(dmsetup version | head -n 1 | tr -s " "), $(dmfilemapd --version), unit $(systemctl show -p FragmentPath --value dmfilemapd@x.service)"
note "exposure: $(systemd-analyze security dmfilemapd@x.service 2>&1 | tail -n 1)"
# The installed libdevmapper's version string, from which `map` can tell the
# descriptor dialect this system's dmstats reads (lvm2 < 2.03.23 bare).
for lib in /usr/lib/*/libdevmapper.so.1.02.1; do
    note "$lib: $(grep -ao '1\.02\.[0-9]* ([0-9-]*)' "$lib" | head -n 1)"
done
