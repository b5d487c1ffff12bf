# The fd must be an open regular file on a dm device: everything else is
# refused before forking, and nothing blocks.
f=/mnt/ext4/bf
make_fragmented "$f" 1
gid=$(map "$f" --nomonitor) || exit 1
refuse "fd not open" "exec dmfilemapd 9 $gid $f inode 0 0"
refuse "fd of a directory" "exec 5< /mnt/ext4; exec dmfilemapd 5 $gid /mnt/ext4 inode 0 0"
mkfifo /mnt/ext4/fifo
refuse "fd of a FIFO" "exec 5<> /mnt/ext4/fifo; exec dmfilemapd 5 $gid /mnt/ext4/fifo inode 0 0"
refuse "fd of /dev/null" "exec 5< /dev/null; exec dmfilemapd 5 $gid /dev/null inode 0 0"
refuse "fd of the dm block device" "exec 5< /dev/mapper/ext4; exec dmfilemapd 5 $gid /dev/mapper/ext4 inode 0 0"
# A socket: busybox nc hands its connection to the program as stdin/stdout.
ip link set lo up
if nc -h 2>&1 | grep -q -- '-e PROG'; then
    nc -l -p 7070 -e sh -c "dmfilemapd 0 $gid $f inode 0 0 2> /tmp/sock.err; echo \$? > /tmp/sock.rc" &
    listener=$!
    i=0
    until echo | timeout -s KILL 5 nc 127.0.0.1 7070 > /dev/null 2>&1; do
        [ $i -ge 20 ] && break
        sleep 0.2
        i=$((i + 1))
    done
    i=0
    while [ ! -s /tmp/sock.rc ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    rc=$(cat /tmp/sock.rc 2> /dev/null)
    kill "$listener" 2> /dev/null
    if [ "$rc" = 1 ] && [ "$(grep -c . /tmp/sock.err)" -eq 1 ]; then
        echo "ok   fd of a socket: $(cat /tmp/sock.err)"
    else
        echo "BAD  fd of a socket: exit status ${rc:-none}; stderr: $(head -c 300 /tmp/sock.err)"
        REFUSALS_BAD=$((REFUSALS_BAD + 1))
    fi
    kill_daemons
else
    note "busybox nc has no -e: socket case skipped"
fi
refusals_done
