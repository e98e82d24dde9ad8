#!/bin/bash
# Runs one command in a throw-away QEMU/TCG VM booting Debian's kernel (which has
# KCM and kTLS as modules), with this machine's root filesystem visible
# read-only (writes land in a tmpfs overlay and are discarded). No NIC: loopback only.
#
#   run-in-vm.sh -k SERIES [--rw DIR]... [--timeout SEC] [--] COMMAND [ARGS...]
#
# COMMAND runs as root in the guest, in the current directory, with the caller's
# exported environment; its stdout, stderr and exit status become this script's.
# --rw DIR shares DIR read-write at the same path (to get files back).
# Exit 124: timed out; 125: the VM failed (the console log tail is printed).
# The boot artefacts are built on first use by build-guest.sh.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
SERIES= ; TIMEOUT=300 ; RW=()
while [ $# -gt 0 ]; do
  case "$1" in
    -k) SERIES=$2; shift 2 ;;
    --rw) dir=$(cd "$2" && pwd) || exit 125; RW+=("$dir"); shift 2 ;;
    --timeout) TIMEOUT=$2; shift 2 ;;
    --) shift; break ;;
    -*) echo "run-in-vm: unknown option $1" >&2; exit 125 ;;
    *) break ;;
  esac
done
[ -n "$SERIES" ] && [ $# -gt 0 ] || { echo "usage: run-in-vm.sh -k SERIES [--rw DIR] [--timeout SEC] [--] COMMAND [ARGS...]" >&2; exit 125; }

CACHE=$(cd "$HERE/.." && pwd)/cache/$SERIES
# QEMU's -virtfs options and the kernel command line are comma and space separated.
for path in "$CACHE" "${RW[@]}"; do
  case "$path" in *[[:space:],]*) echo "run-in-vm: paths must not contain spaces or commas: $path" >&2; exit 125 ;; esac
done
mkdir -p "$CACHE"
stale() { [ ! -f "$CACHE/kver" ] || [ "$HERE/init.sh" -nt "$CACHE/kver" ] || [ "$HERE/build-guest.sh" -nt "$CACHE/kver" ]; }
if stale; then
  # flock: two first runs at once must not build into the same directory
  ( flock 9; ! stale || "$HERE/build-guest.sh" "$SERIES" >&2 ) 9> "$CACHE/.build.lock" \
    || { echo "run-in-vm: build-guest.sh $SERIES failed" >&2; exit 125; }
fi

RUNDIR=$(mktemp -d /tmp/kmux-vm.XXXXXX) || exit 125
QEMU_PID= ; OUT_PID= ; ERR_PID=
cleanup() {
  for pid in $QEMU_PID $OUT_PID $ERR_PID; do kill "$pid" 2> /dev/null; done
  rm -rf "$RUNDIR"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The guest's command: the caller's environment, directory and command, quoted.
{
  echo '#!/bin/bash'
  export -p | grep -vE '^declare -x (PWD|OLDPWD|SHLVL|_)(=|$)'
  printf 'cd -- %q || exit 125\n' "$PWD"
  printf 'exec'; printf ' %q' "$@"; printf '\n'
} > "$RUNDIR/command.sh"

SHARES=(-virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap")
RW_ARG=
for i in "${!RW[@]}"; do
  SHARES+=(-virtfs "local,path=${RW[$i]},mount_tag=rw$i,security_model=none,multidevs=remap")
  RW_ARG=${RW_ARG:+$RW_ARG,}${RW[$i]}
done
# cryptomgr.notests: the crypto self-tests cost ~1 s per boot under TCG.
APPEND="console=ttyS0 panic=-1 oops=panic quiet loglevel=3 mitigations=off cryptomgr.notests vm.script=$RUNDIR/command.sh"
[ -n "$RW_ARG" ] && APPEND+=" vm.rw=$RW_ARG"

boot() {
  # stdout/stderr come back through virtio-serial ports into FIFOs (MB/s, binary-clean).
  rm -f "$RUNDIR/out" "$RUNDIR/err"
  mkfifo "$RUNDIR/out" "$RUNDIR/err"
  cat "$RUNDIR/out" & OUT_PID=$!
  cat "$RUNDIR/err" >&2 & ERR_PID=$!

  timeout -k 5 "$TIMEOUT" qemu-system-x86_64 \
    -machine pc -accel tcg,thread=multi -cpu max -smp 2 -m 2048 \
    -nodefaults -no-user-config -display none -no-reboot \
    -kernel "$CACHE/vmlinux" -initrd "$CACHE/initramfs.cpio.gz" -append "$APPEND" \
    "${SHARES[@]}" \
    -serial "file:$RUNDIR/console.log" \
    -device virtio-serial-pci,id=vser0 \
    -chardev "file,id=out,path=$RUNDIR/out" -device virtserialport,bus=vser0.0,chardev=out,name=out \
    -chardev "file,id=err,path=$RUNDIR/err" -device virtserialport,bus=vser0.0,chardev=err,name=err \
    < /dev/null 2> "$RUNDIR/qemu.stderr" &
  QEMU_PID=$!
  wait "$QEMU_PID"; QEMU_RC=$?
  QEMU_PID=

  # Let the forwarders drain. If QEMU died before opening a FIFO, its reader is
  # still blocked in open(), so it is ended after a grace period.
  for _ in $(seq 50); do
    kill -0 "$OUT_PID" 2> /dev/null || kill -0 "$ERR_PID" 2> /dev/null || break
    sleep 0.1
  done
  kill "$OUT_PID" "$ERR_PID" 2> /dev/null
  wait 2> /dev/null
  OUT_PID= ; ERR_PID=
}

# A guest kernel that panics before init.sh starts the command is booted again (up to twice).
# Seen with 7.3 under TCG: the int3 of a text patch another vCPU had already finished (an Oops
# in sched_clock_cpu ~4.5 s into the boot, 1 boot in 10 here: QEMU's cross-vCPU code coherence),
# and "IO-APIC + timer doesn't work" on a host too loaded to tick in time. Neither is the kernel
# under test, and nothing of the command ran yet.
for attempt in 1 2 3; do
  boot
  grep -q '@@KMUX_VM_EXIT=\|@@KMUX_VM_STARTED@@' "$RUNDIR/console.log" && break
  [ "$QEMU_RC" != 124 ] && [ "$QEMU_RC" != 137 ] && grep -q 'Kernel panic' "$RUNDIR/console.log" || break
  [ "$attempt" = 3 ] && break
  echo "run-in-vm: kernel $SERIES: the guest kernel panicked while booting ($(tr -d '\r' < "$RUNDIR/console.log" | grep -m1 -o 'Oops: .*\|Kernel panic - .*' || true)); booting again" >&2
  cp "$RUNDIR/console.log" "$CACHE/boot-panic-console.log"
done

cp "$RUNDIR/console.log" "$CACHE/last-console.log"
console_tail() {
  echo "run-in-vm: guest console (kernel $SERIES), last lines (the kernel logs only errors):" >&2
  tail -n 40 "$RUNDIR/console.log" | tr -d '\r' >&2
}
if [ "$QEMU_RC" = 124 ] || [ "$QEMU_RC" = 137 ]; then
  echo "run-in-vm: kernel $SERIES: timed out after ${TIMEOUT}s" >&2
  console_tail
  exit 124
fi
RC=$(tr -d '\r' < "$RUNDIR/console.log" | sed -n 's/.*@@KMUX_VM_EXIT=\([0-9]*\)@@.*/\1/p' | tail -1)
if [ -z "$RC" ]; then
  echo "run-in-vm: kernel $SERIES: the VM ended without reporting an exit status (qemu exit $QEMU_RC)" >&2
  cat "$RUNDIR/qemu.stderr" >&2
  console_tail
  exit 125
fi
[ "$RC" = 125 ] && console_tail   # init.sh's own failures are explained on the console
exit "$RC"
