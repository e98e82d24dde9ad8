#!/bin/sh
# PID 1 of the test VM (busybox sh). Loads the kernel modules kmux needs, mounts
# the host's root (9p, read-only) under a tmpfs overlay, chroots into it and runs
# the command script that run-in-vm.sh wrote. Then it reports the exit status
# and powers off.
#
# Kernel command line:  vm.script=PATH  host path of the command script
#                       vm.rw=P1,P2     host dirs also shared read-write (9p tags rw0, rw1, ...)
# Output: the command's stdout/stderr go to the virtio-serial ports "out"/"err";
# the exit status goes to the kernel log as @@KMUX_VM_EXIT=<n>@@, because printk
# reaches the console (ttyS0) synchronously and cannot be lost at power-off.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

SCRIPT= ; RW=
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    vm.script=*) SCRIPT=${arg#vm.script=} ;;
    vm.rw=*) RW=${arg#vm.rw=} ;;
  esac
done

finish() {
  echo "<2>@@KMUX_VM_EXIT=$1@@" > /dev/kmsg
  sync
  poweroff -f
}
die() { echo "vm-init: $*"; finish 125; }

KVER=$(uname -r)
while read -r module; do
  out=$(insmod "/lib/modules/$KVER/$module" 2>&1) || die "insmod $module: $out"
done < /etc/modules.load

mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 hostroot /host || die "cannot mount the host root over 9p"
mount -t tmpfs -o mode=755 scratch /scratch
mkdir -p /scratch/upper /scratch/work
mount -t overlay -o lowerdir=/host,upperdir=/scratch/upper,workdir=/scratch/work overlay /newroot || die "cannot mount the overlay"
mount -t proc proc /newroot/proc
mount -t sysfs sysfs /newroot/sys
mount -t devtmpfs devtmpfs /newroot/dev
mkdir -p /newroot/dev/pts /newroot/dev/shm
mount -t devpts devpts /newroot/dev/pts
mount -t tmpfs -o mode=1777 tmpfs /newroot/dev/shm
# No fresh tmpfs over /tmp: the project may itself live under the host's /tmp (a CI clone),
# and the overlay already keeps every guest write out of the host.
i=0
for dir in $(echo "$RW" | tr ',' ' '); do
  mkdir -p "/newroot$dir"
  mount -t 9p -o trans=virtio,version=9p2000.L,cache=none,msize=512000 "rw$i" "/newroot$dir" || die "cannot mount rw$i at $dir"
  i=$((i + 1))
done
ip link set lo up

[ -n "$SCRIPT" ] || die "no vm.script= on the kernel command line"
cp "/host$SCRIPT" /newroot/run/kmux-vm-command.sh || die "cannot read $SCRIPT through 9p"

out= ; err=
for port in /sys/class/virtio-ports/*; do
  case "$(cat "$port/name")" in
    out) out=/dev/${port##*/} ;;
    err) err=/dev/${port##*/} ;;
  esac
done
[ -n "$out" ] && [ -n "$err" ] || die "virtio-serial ports out/err missing"
# Pipes, not the serial devices, as the command's stdout/stderr: as under CI,
# isatty() is false (no colours, no progress bars).
mkfifo /run/out /run/err
cat /run/out > "$out" & cat_out=$!
cat /run/err > "$err" & cat_err=$!
# From here the command runs: run-in-vm.sh boots again only a guest that died before this line.
echo "<2>@@KMUX_VM_STARTED@@" > /dev/kmsg
chroot /newroot /bin/bash /run/kmux-vm-command.sh < /dev/null > /run/out 2> /run/err
rc=$?

# Leftover background processes would hold the pipes open and the cats would
# never see EOF: TERM, then KILL, every user process (kernel threads have no exe).
leftovers() {
  left=
  for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    case " 1 $cat_out $cat_err " in *" $pid "*) continue ;; esac
    [ -e "$p/exe" ] && left="$left $pid"
  done
}
leftovers
if [ -n "$left" ]; then
  kill -TERM $left 2> /dev/null
  for _ in 1 2 3 4 5 6 7 8 9 10; do leftovers; [ -z "$left" ] && break; sleep 0.1; done
  [ -n "$left" ] && kill -KILL $left 2> /dev/null
fi
wait $cat_out $cat_err
finish "$rc"
