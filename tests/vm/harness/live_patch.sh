# vm-timeout: 200
# A check of the harness, not of dmfilemapd: flips a static key
# (kernel.sched_schedstats) as fast as a shell can while two loops of pipes
# switch tasks through the scheduler code it patches. Under qemu's TCG with
# a thread per vCPU the guest dies (Debian 13: a stale int3 within a
# minute) or stops answering (Debian 12); with one thread it lives. See
# tests/vm/README.md, "One TCG thread".
# usage: [VM_TCG_THREAD=multi] tests/vm/run.sh tests/vm/harness/live_patch.sh
key=/proc/sys/kernel/sched_schedstats
[ -w $key ] || { echo "BAD  no $key in this kernel"; exit 1; }
switchers=""
for i in 1 2; do
    ( while :; do echo x | cat > /dev/null; done ) &
    switchers="$switchers $!"
done
seconds=${POKE_SECONDS:-120}
t0=$(date +%s)
flips=0
while [ $(($(date +%s) - t0)) -lt "$seconds" ]; do
    echo 1 > $key
    echo 0 > $key
    flips=$((flips + 2))
done
kill $switchers
echo "ok   $flips flips of $key in $(($(date +%s) - t0)) s, the guest alive"
