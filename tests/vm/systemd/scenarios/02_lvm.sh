# systemd-boot: 1
# vm-timeout: 240
# LVM on the second disk as a user makes it: a PV, a VG, an ext4 LV and an
# xfs LV, mounted from /etc/fstab (so that the second boot mounts them).
run pvcreate -q /dev/vdb
run vgcreate -q "$VG" /dev/vdb
run lvcreate -q -y -L 512M -n ext4 "$VG"
run lvcreate -q -y -L 512M -n xfs "$VG"
run mkfs.ext4 -q "/dev/$VG/ext4"
run mkfs.xfs -q "/dev/$VG/xfs"
mkdir -p /srv/ext4 /srv/xfs
# x-systemd.device-timeout: software emulation on a busy machine has taken
# udev's activation of the LVs at the second boot past systemd's 90 s
# (systemd.default_device_timeout_sec= on the kernel's command line needs
# systemd 254; Debian 12 has 252).
echo "/dev/$VG/ext4 /srv/ext4 ext4 defaults,x-systemd.device-timeout=10min 0 2" >> /etc/fstab
echo "/dev/$VG/xfs /srv/xfs xfs defaults,x-systemd.device-timeout=10min 0 2" >> /etc/fstab
run systemctl daemon-reload
run systemctl start srv-ext4.mount srv-xfs.mount
note "$(lvs --noheadings -o lv_name,lv_size,lv_dm_path "$VG" | tr -s ' \n' ' ')"
