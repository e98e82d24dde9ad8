import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** What a server process did in a window, counted per thread: system calls and voluntary context switches. */
export interface ThreadWorkCounts {
  /** System calls of all threads (perf's raw_syscalls:sys_enter), or NaN when perf could not count. */
  readonly syscalls: number;
  /** Those of the main thread (tid = pid) alone. */
  readonly mainSyscalls: number;
  /** Voluntary context switches (a thread blocked, e.g. in epoll_wait), all threads, from /proc. */
  readonly voluntarySwitches: number;
}

/** Sum of voluntary_ctxt_switches over the process's threads now (threads that ended are not counted). */
function voluntarySwitches(pid: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      counts.set(tid, Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0));
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return counts;
}

/**
 * Counts a server's work per thread over a window, without slowing it the way strace would:
 * `perf stat --per-thread` on the syscall-entry tracepoint (counting only, no samples), and
 * the threads' voluntary switches from /proc. Needs perf and the right to trace the process
 * (root, or perf_event_paranoid ≤ 1 for one's own); without them the syscall counts are NaN.
 */
export class ThreadWork {
  private perf: ChildProcess | null = null;
  private dir: string | null = null;
  private switchesAtStart = new Map<string, number>();
  private counts: ThreadWorkCounts = { syscalls: Number.NaN, mainSyscalls: Number.NaN, voluntarySwitches: Number.NaN };

  constructor(private readonly pid: number) {}

  get result(): ThreadWorkCounts {
    return this.counts;
  }

  start(): void {
    this.switchesAtStart = voluntarySwitches(this.pid);
    this.dir = mkdtempSync(join(tmpdir(), 'kmux-perf-'));
    const args = ['stat', '-e', 'raw_syscalls:sys_enter', '--per-thread', '-p', String(this.pid), '-x', ',', '-o', join(this.dir, 'out')];
    this.perf = spawn('perf', args, { stdio: 'ignore' });
    this.perf.on('error', () => (this.perf = null));
  }

  async stop(): Promise<void> {
    const after = voluntarySwitches(this.pid);
    let switches = 0;
    for (const [tid, count] of after) switches += count - (this.switchesAtStart.get(tid) ?? 0);
    let syscalls = Number.NaN;
    let mainSyscalls = Number.NaN;
    const { perf, dir } = this;
    if (perf && perf.exitCode === null) {
      perf.kill('SIGINT');
      await once(perf, 'exit');
      try {
        ({ syscalls, mainSyscalls } = this.parse(readFileSync(join(dir!, 'out'), 'utf8')));
      } catch {
        // perf printed nothing usable (no permission, no tracepoint): the counts stay NaN.
      }
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
    this.perf = null;
    this.counts = { syscalls, mainSyscalls, voluntarySwitches: switches };
  }

  /** perf's CSV lines: `<comm>-<tid>,<count>,<unit>,raw_syscalls:sys_enter,...`. */
  private parse(text: string): { syscalls: number; mainSyscalls: number } {
    let syscalls = 0;
    let mainSyscalls = 0;
    let lines = 0;
    for (const line of text.split('\n')) {
      const [thread, count, , event] = line.split(',');
      if (event !== 'raw_syscalls:sys_enter' || !thread || !count || !/^\d+$/.test(count)) continue;
      lines++;
      const n = Number(count);
      syscalls += n;
      if (thread.endsWith(`-${this.pid}`)) mainSyscalls += n;
    }
    if (lines === 0) throw new Error('no counts');
    return { syscalls, mainSyscalls };
  }
}
