#!/bin/sh
# Run by dmtest.service (rootfs.sh) once the system is up: this boot's
# scenarios (those whose "# systemd-boot: N" is the dmtest.boot=N of the
# kernel's command line), one shell each, in /t/list's order; results on
# ttyS1, which run.sh reads; then poweroff, the clean way (units stopped).
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root
cd /

boot=$(sed -n 's/.*dmtest\.boot=\([0-9]*\).*/\1/p' /proc/cmdline)
report() { echo "$*" > /dev/ttyS1; }

# When userspace started and when multi-user.target was reached, in seconds
# since the kernel started (systemd's own monotonic stamps, microseconds).
us() { systemctl show -p "$1" --value ${2:+"$2"} | awk '{ printf "%.1f", $1 / 1000000 }'; }
report "BOOT $boot: kernel $(uname -r), systemd $(systemctl --version | sed -n '1s/^systemd \([0-9]*\).*/\1/p'): userspace at $(us UserspaceTimestampMonotonic) s, multi-user.target at $(us ActiveEnterTimestampMonotonic multi-user.target) s"
failed_units=$(systemctl list-units --failed --plain --no-legend | awk '{ print $1 }' | tr '\n' ' ')
[ -z "$failed_units" ] || report "BOOT $boot: failed units: $failed_units"

uptime_cs() { awk '{ split($1, a, "."); print a[1] * 100 + a[2] }' /proc/uptime; }
secs() { awk -v c="$1" 'BEGIN { printf "%d.%02d", c / 100, c % 100 }'; }

for name in $(cat /t/list); do
    f=/t/scenarios/$name.sh
    [ "$(sed -n 's/^# systemd-boot: *//p' "$f")" = "$boot" ] || continue
    limit=$(sed -n 's/^# vm-timeout: *//p' "$f")
    limit=${limit:-60}
    t0=$(uptime_cs)
    timeout -s KILL "$limit" sh -c ". /t/lib.sh; . /t/sd.sh; . $f" > "/tmp/out.$name" 2>&1 < /dev/null
    rc=$?
    took=$(secs $(($(uptime_cs) - t0)))
    echo "=== $name rc=$rc ($took s)"
    cat "/tmp/out.$name"
    # What the scenario chose to tell (lines "-- ..." from note, "| ..." kept).
    grep '^-- ' "/tmp/out.$name" | cut -c1-300 | sed 's/^/  /' > /dev/ttyS1
    if [ "$rc" -eq 0 ]; then
        report "PASS $name ($took s)"
    else
        why=$(sed -n 's/^FAIL: //p' "/tmp/out.$name" | tail -1 | cut -c1-400)
        [ -n "$why" ] || why="exit status $rc"
        [ "$rc" -eq 137 ] && why="killed after $limit s (hang)"
        report "FAIL $name: $why ($took s)"
        tail -n 15 "/tmp/out.$name" | cut -c1-200 | sed 's/^/| /' > /dev/ttyS1
    fi
done
sync
report "DONE"
systemctl --no-block poweroff
