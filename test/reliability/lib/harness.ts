/**
 * Servers under test and the resources the suites watch. Every suite starts its server
 * through startServer() with a transport from TRANSPORTS (mode.ts), so the same suites can
 * run over a kernel transport once one exists outside test/kernel.
 */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { BroadcastChannel } from 'node:worker_threads';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Server, type Logger, type ServerOptions } from '@kmux/core';
import type { Wire } from './wire.js';

export interface QuietLogger extends Logger {
  readonly lines: string[];
}

/** Keeps what the server logs (worker exits are expected in chaos runs) without printing it. */
export function quietLogger(): QuietLogger {
  const lines: string[] = [];
  const keep = (message: string): void => {
    if (lines.length < 10_000) lines.push(message);
  };
  return { lines, info: keep, warn: keep, error: keep };
}

export interface Running {
  readonly server: Server;
  readonly port: number;
  readonly logger: QuietLogger;
  /** Closes the server (in-flight requests get timeoutMs to finish). */
  close(timeoutMs?: number): Promise<void>;
}

const running = new Set<Server>();

export async function startServer(
  wire: Wire,
  transport: string,
  options: Partial<Omit<ServerOptions, 'codec' | 'transport'>> = {},
): Promise<Running> {
  const logger = quietLogger();
  const server = new Server({
    codec: wire.serverCodec(),
    workers: 2,
    transport: transport as ServerOptions['transport'],
    logger,
    ...options,
  });
  running.add(server);
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
  return {
    server,
    port,
    logger,
    close: async (timeoutMs = 0) => {
      running.delete(server);
      await server.close({ timeoutMs });
    },
  };
}

/** Closes whatever a failed test left running. */
export async function closeAll(): Promise<void> {
  const servers = [...running];
  running.clear();
  await Promise.all(servers.map((server) => server.close({ timeoutMs: 0 })));
}

// ---- resources ---------------------------------------------------------------------------

/** A JavaScript module or addon, as a path an fd points to. */
const MODULE_FILE = /\.(?:[cm]?js|json|node)$/;

/**
 * Open file descriptors of this process, less module files being read. A worker thread ended
 * while it loads its modules (a killed worker's replacement, a pool closing) can leave that
 * read's fd open in Node: a fresh-clone run once kept one on piscina's dist/main.js past the
 * chaos test's 10 s wait. kmux holds no module file open; these checks are for its sockets,
 * pipes, eventfds and epoll sets.
 */
export function openFds(): number {
  let count = 0;
  for (const target of fdTargets().values()) if (!MODULE_FILE.test(target)) count++;
  return count;
}

/** What each open fd is ("socket:[123]", "anon_inode:bpf-map", a path), by number. */
export function fdTargets(): Map<string, string> {
  const targets = new Map<string, string>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      targets.set(fd, readlinkSync(`/proc/self/fd/${fd}`));
    } catch {} // closed since the listing (readdir's own fd among them)
  }
  return targets;
}

/**
 * Every epoll set of this process and the fds it watches ("tfd N events M"): each thread's event
 * loop has one, and so has each kernel-transport worker's PollGroup (scheduler/kernel-worker.ts).
 * For a stall: which sockets some thread still polls, and which no set holds any more.
 */
export function epollSets(): string {
  const lines: string[] = [];
  for (const [fd, target] of fdTargets()) {
    if (target !== 'anon_inode:[eventpoll]') continue;
    let info: string;
    try {
      info = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
    } catch {
      continue;
    }
    const watched = [...info.matchAll(/^tfd:\s*(\d+) events:\s*(\w+)/gm)].map(([, tfd, events]) => `${tfd}:${events}`);
    lines.push(`epoll ${fd} -> ${watched.join(' ') || '(empty)'}`);
  }
  return lines.join('\n');
}

/** The fds open now that were not open (as the same thing) in `before`: "fd -> target" each. */
export function fdsOpenedSince(before: Map<string, string>): string[] {
  return [...fdTargets()].filter(([fd, target]) => before.get(fd) !== target).map(([fd, target]) => `${fd} -> ${target}`);
}

setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as () => void;

/** Heap bytes in use after full collections. */
export function heapAfterGc(): number {
  for (let i = 0; i < 3; i++) collect();
  return process.memoryUsage().heapUsed;
}

export function rss(): number {
  return process.memoryUsage.rss();
}

export const MiB = 1024 * 1024;

/** Polls `condition` until it holds; for state with no event to wait on (server stats). */
export async function until(condition: () => boolean, what: string | (() => string), timeoutMs = 10_000): Promise<void> {
  const giveUp = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > giveUp) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Samples RSS every `everyMs` until stopped; returns the peak. */
export function rssSampler(everyMs = 50): { stop(): number } {
  let peak = rss();
  const timer = setInterval(() => {
    peak = Math.max(peak, rss());
  }, everyMs);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, rss());
    },
  };
}

// ---- latency -----------------------------------------------------------------------------

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

// ---- gates (fixtures/raw-handler.mjs `hold`) ---------------------------------------------

const GATE_CHANNEL = 'kmux-reliability-gate';
let gate: BroadcastChannel | null = null;
const startedTags = new Set<string>();
const startWaiters = new Map<string, () => void>();

function gateChannel(): BroadcastChannel {
  if (!gate) {
    gate = new BroadcastChannel(GATE_CHANNEL);
    gate.unref();
    gate.onmessage = (event) => {
      const tag = (event as unknown as MessageEvent<{ started?: string }>).data.started;
      if (tag === undefined) return;
      startedTags.add(tag);
      startWaiters.get(tag)?.();
    };
  }
  return gate;
}

/** Resolves once a `hold` handler started on `tag`. */
export function held(tag: string): Promise<void> {
  gateChannel();
  if (startedTags.has(tag)) return Promise.resolve();
  return new Promise((resolve) => startWaiters.set(tag, resolve));
}

/** Lets `hold` handlers finish: one tag, or '*' for all. */
export function release(tag: string): void {
  gateChannel().postMessage({ release: tag });
}

/** Call before requests that hold, so no 'started' message is missed. */
export function listenForGates(): void {
  gateChannel();
}
