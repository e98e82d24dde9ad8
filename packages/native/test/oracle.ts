// Independent answers to "does this kernel have X", from Python's socket module
// instead of our addon, so the host tests can tell a broken probe from a kernel
// that lacks the feature.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const PYTHON_SYSCALL_ERRNO = `
import errno, socket, sys
def attempt(fn):
    try:
        fn()
        return 0
    except OSError as e:
        return e.errno
def kcm():
    socket.socket(41, socket.SOCK_DGRAM, 1).close()  # AF_KCM, KCMPROTO_CONNECTED
def tls_ulp():
    srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
    cli = socket.create_connection(srv.getsockname())
    cli.setsockopt(socket.IPPROTO_TCP, 31, b"tls")  # TCP_ULP
print(attempt({"kcm": kcm, "tls_ulp": tls_ulp}[sys.argv[1]]))
`;

/** errno of the operation as Python sees it (0 = it worked). */
export function pythonErrno(what: 'kcm' | 'tls_ulp'): number {
  return Number(execFileSync('python3', ['-c', PYTHON_SYSCALL_ERRNO, what], { encoding: 'utf8' }).trim());
}

/** Effective capabilities of this thread from /proc, not from capget. */
export function procCapabilities(): { bpf: boolean; netAdmin: boolean } {
  const line = readFileSync('/proc/thread-self/status', 'utf8').match(/^CapEff:\s*([0-9a-f]+)$/m);
  if (!line) throw new Error('no CapEff line in /proc/thread-self/status');
  const caps = BigInt(`0x${line[1]}`);
  const has = (cap: number) => (caps & (1n << BigInt(cap))) !== 0n;
  return { bpf: has(39), netAdmin: has(12) };
}

/** kernel.unprivileged_bpf_disabled: 0 lets anyone load socket filters. */
export function unprivilegedBpfDisabled(): number {
  return Number(readFileSync('/proc/sys/kernel/unprivileged_bpf_disabled', 'utf8').trim());
}
