import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Kernel clock ticks per second, the unit of /proc times. */
const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/**
 * CPU seconds (user + system, all threads) a process has used so far, from
 * /proc/<pid>/stat — readable for any process, so servers need not cooperate. Linux only.
 */
export function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may contain spaces; fields after it are space-separated.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/**
 * CPU seconds all processes on the machine have used so far (every state but idle and
 * iowait, summed over cores), from /proc/stat. Lets a benchmark notice other load.
 */
export function machineCpuSeconds(): number {
  const [, ...ticks] = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/);
  // user nice system idle iowait irq softirq steal (guest time is already in user).
  const [user, nice, system, , , irq, softirq, steal] = ticks.slice(0, 8).map(Number);
  return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS;
}

/** Measures CPU use between `start()` and `stop()`, in percent of one core. */
export class CpuWindow {
  private cpuAtStart = 0;
  private timeAtStart = 0;
  private percent = Number.NaN;

  /** `readCpuSeconds` is processCpuSeconds bound to a pid, or machineCpuSeconds. */
  constructor(private readonly readCpuSeconds: () => number) {}

  static ofProcess(pid: number): CpuWindow {
    return new CpuWindow(() => processCpuSeconds(pid));
  }

  static ofMachine(): CpuWindow {
    return new CpuWindow(machineCpuSeconds);
  }

  start(): void {
    this.cpuAtStart = this.readCpuSeconds();
    this.timeAtStart = performance.now();
  }

  stop(): void {
    const seconds = (performance.now() - this.timeAtStart) / 1000;
    this.percent = ((this.readCpuSeconds() - this.cpuAtStart) / seconds) * 100;
  }

  /** NaN until a window has been closed. */
  get percentOfOneCore(): number {
    return this.percent;
  }
}

/** Resident memory of a process in bytes (VmRSS in /proc/<pid>/status). */
export function processRssBytes(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS for process ${pid}`);
  return Number(match[1]) * 1024;
}
