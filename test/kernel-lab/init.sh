#!/bin/busybox sh
# The kernel lab's initramfs /init (docs/KERNEL-LAB.md in the project, ../shared/docs/KERNEL-LAB.md):
# load the virtio and 9p modules, mount this machine's root (virtio 9p, tag hostroot), give
# the guest its own /proc, /sys, /dev, /dev/shm, /run and /tmp on top of it, and run the
# script named by `lab.run=` inside that root as root. Its exit status is printed as
# `LAB-EXIT <status>` on the console, which is how the host learns it; then power off.
/bin/busybox mkdir -p /sbin /usr/bin /usr/sbin /proc /sys /dev /mnt
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci \
  9pnet 9pnet_virtio netfs fscache 9p; do
  insmod "/lib/modules/$m.ko" || echo "lab: insmod $m failed"
done
run=""
name="lab"
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    lab.run=*) run="${arg#lab.run=}" ;;
    lab.name=*) name="${arg#lab.name=}" ;;
  esac
done
hostname "$name"
# No guest networking at all: only the loopback interface, for 127.0.0.1 inside the guest.
ip link set lo up
# cache=loose: the host's files do not change under a running guest except the run
# directory, which only the guest writes; node starts in ~1 s instead of ~5 s.
if ! mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=loose hostroot /mnt; then
  echo "lab: cannot mount the host root over 9p"
  echo "LAB-EXIT 125"
  echo o > /proc/sysrq-trigger
  sleep 10
fi
mount -t proc proc /mnt/proc
mount -t sysfs sys /mnt/sys
mount -t devtmpfs dev /mnt/dev
mkdir -p /mnt/dev/shm /mnt/dev/pts
mount -t tmpfs shm /mnt/dev/shm
mount -t tmpfs run /mnt/run
# A checkout under /tmp (a fresh clone there) stays visible: the guest's /tmp is then the
# host's, over 9p, instead of a tmpfs of its own.
case "$run" in
  /tmp/*) ;;
  *) mount -t tmpfs tmp /mnt/tmp ;;
esac
status=125
if [ -n "$run" ]; then
  chroot /mnt /bin/bash "$run"
  status=$?
else
  echo "lab: no lab.run= on the kernel command line"
fi
sync
echo "LAB-EXIT $status"
echo o > /proc/sysrq-trigger
sleep 10
