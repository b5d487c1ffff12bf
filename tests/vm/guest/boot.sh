#!/bin/sh
# First thing the VM runs (busybox init's sysinit). Brings up dm, loop, ext4,
# xfs and btrfs, makes one linear dm device per file system over a sparse file
# in tmpfs, then runs the scenarios named in /t/list, one shell each, and
# reports on the results port ($REPORT_TTY: ttyS1 on amd64, hvc0 on arm64),
# which run.sh reads. Powers off at the end, whatever happens.
export PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export DM_DISABLE_UDEV=1
export HOME=/root

mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mount -t tmpfs run /run
ln -sf /proc/mounts /etc/mtab

# The results port, set by run.sh for the architecture (/t/env).
REPORT_TTY=$(sed -n 's/^REPORT_TTY=//p' /t/env 2>/dev/null)
export REPORT_TTY=${REPORT_TTY:-/dev/ttyS1}
report() { echo "$*" > "$REPORT_TTY"; }
finish() {
    sync
    poweroff -f
    sleep 10
}

for m in $(cat /lib/modules/order); do
    insmod "/lib/modules/$m" || report "BOOT insmod $m failed"
done

. /t/lib.sh
[ -f /t/env ] && . /t/env

uptime_cs() { awk '{ split($1, a, "."); print a[1] * 100 + a[2] }' /proc/uptime; }
secs() { awk -v c="$1" 'BEGIN { printf "%d.%02d", c / 100, c % 100 }'; }

report "BOOT up at $(secs "$(uptime_cs)") s, kernel $(uname -r)"

t0=$(uptime_cs)
if ! setup_devices > /tmp/setup.log 2>&1; then
    cat /tmp/setup.log
    report "BOOT device setup failed: $(tail -1 /tmp/setup.log)"
    finish
fi
report "BOOT devices ready in $(secs $(($(uptime_cs) - t0))) s"

# The kernel's inotify limit as booted: reset_world puts it back, as a
# scenario that lowers it (syslog) and is killed at its time limit skips
# its own EXIT trap. With cat: busybox's read takes a byte at a time, and a
# sysctl file gives only its first byte to a read at offset 0.
BOOT_INOTIFY_INSTANCES=$(cat /proc/sys/fs/inotify/max_user_instances)
for name in $(cat /t/list); do
    reset_world > /tmp/reset.log 2>&1 || report "BOOT reset before $name: $(tail -1 /tmp/reset.log)"
    t0=$(uptime_cs)
    if [ ! -f "/t/scenarios/$name.sh" ]; then
        report "FAIL $name: no such scenario"
        continue
    fi
    # A scenario may ask for more time than the default: "# vm-timeout: SECONDS".
    limit=$(sed -n 's/^# vm-timeout: *//p' "/t/scenarios/$name.sh")
    limit=${limit:-${SCENARIO_TIMEOUT:-60}}
    # Slower emulation (arm64 on an x86 host) and a loaded host stretch
    # every limit alike (run.sh sets both scales).
    limit=$((limit * ${TIMEOUT_SCALE:-1} * ${TIME_SCALE:-1}))
    timeout -s KILL "$limit" sh -c ". /t/lib.sh; . /t/scenarios/$name.sh" \
        > "/tmp/out.$name" 2>&1 < /dev/null
    rc=$?
    took=$(secs $(($(uptime_cs) - t0)))
    echo "=== $name rc=$rc ($took s)"
    cat "/tmp/out.$name"
    if [ -s /tmp/dmfilemapd.log ]; then
        echo "--- dmfilemapd log:"
        tail -n 60 /tmp/dmfilemapd.log
        [ "$rc" -eq 0 ] || tail -n 15 /tmp/dmfilemapd.log | sed 's/^/| log: /' > "$REPORT_TTY"
        rm -f /tmp/dmfilemapd.log
    fi
    if [ "$rc" -eq 0 ]; then
        report "PASS $name ($took s)"
    else
        why=$(sed -n 's/^FAIL: //p' "/tmp/out.$name" | tail -1 | cut -c1-400)
        [ -n "$why" ] || why="exit status $rc"
        [ "$rc" -eq 137 ] && why="killed after $limit s (hang)"
        report "FAIL $name: $why ($took s)"
        tail -n 12 "/tmp/out.$name" | cut -c1-200 | sed 's/^/| /' > "$REPORT_TTY"
    fi
done
report "DONE"
finish
