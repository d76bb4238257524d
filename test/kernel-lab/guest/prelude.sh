# Sourced at the start of every guest script (lab.ts writes run.sh around it): the kernel
# modules the lab's tests use, from the extracted Debian kernel (KERNEL-LAB.md), and the
# TCP mux when the VM has forwarded ports. Runs inside the guest, as root, cwd the checkout.
modprobe -d "$LAB_MODULES" -a dm-mod dm-log dm-region-hash dm-mirror dm-log-userspace \
  dm-flakey dm-delay loop virtio_blk virtio_console
mkdir -p /run/lab
if [ -n "${LAB_FORWARD:-}" ]; then
  node "$LAB_BUNDLE/guest-mux.mjs" "$LAB_FORWARD" > /run/lab/mux.log 2>&1 &
  for _ in $(seq 1 300); do [ -e /run/lab/mux.ready ] && break; sleep 0.1; done
  [ -e /run/lab/mux.ready ] || { echo "lab: the guest mux did not start"; cat /run/lab/mux.log; exit 124; }
fi
# Runs a guest program (test/kernel-lab/guest/<name>.ts, bundled by lab.ts).
guest() { node --enable-source-maps "$LAB_BUNDLE/$1.mjs" "${@:2}"; }
