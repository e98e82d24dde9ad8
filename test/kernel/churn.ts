// Connection churn against a kmux Server serving the raw codec's test handlers: many short
// connections at once, each ending one of four ways, to prove that a transport frees
// everything a connection had. Used by the sockmap hygiene test on the host and the KCM one
// in the VM (test/kernel/kcm-limits.test.ts).
import { readdirSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { encodeFrame, encodeRawRequest } from '@kmux/core';

/** How a connection ends, after one round trip: closed; with a request in flight and a frame half sent; with an RST (SO_LINGER 0); half-closed (the server closes its side). */
export const ENDINGS = ['clean', 'mid-request', 'reset', 'half-close'] as const;
export type Ending = (typeof ENDINGS)[number];

export interface ChurnResult {
  readonly cycles: number;
  readonly ms: number;
  readonly endings: Readonly<Record<Ending, number>>;
}

const openSocket = (port: number, allowHalfOpen: boolean): Promise<Socket> =>
  new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, allowHalfOpen });
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });

/** Resolves once a whole reply frame arrived (true) or the socket closed first (false). */
function firstReply(socket: Socket): Promise<boolean> {
  return new Promise((resolve) => {
    let have = 0;
    let need = -1;
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => {
      have += chunk.length;
      chunks.push(chunk);
      if (need < 0 && have >= 4) need = 4 + Buffer.concat(chunks).readUInt32BE(0);
      if (need >= 0 && have >= need) resolve(true);
    });
    socket.once('close', () => resolve(false));
  });
}

const closed = (socket: Socket): Promise<void> =>
  socket.closed ? Promise.resolve() : new Promise((resolve) => socket.once('close', () => resolve()));

async function cycle(port: number, i: number, ending: Ending): Promise<void> {
  const socket = await openSocket(port, ending === 'half-close');
  socket.on('error', () => {});
  const request = encodeFrame(encodeRawRequest(i, 'echo', Buffer.from(`churn ${i}`)));
  // One round trip first, so that every connection ends under kernel framing: a socket the
  // peer closed before the accept never gets that far (sockmap refuses it: kernel_setup).
  const first = firstReply(socket);
  socket.write(request);
  if (!(await first)) throw new Error(`cycle ${i} (${ending}): closed before its first reply`);
  socket.removeAllListeners('data');
  switch (ending) {
    case 'clean':
      socket.end();
      break;
    case 'mid-request':
      socket.write(request);
      socket.write(request.subarray(0, 7)); // a second frame cut short
      socket.destroy();
      break;
    case 'reset':
      socket.write(request);
      socket.resetAndDestroy();
      break;
    case 'half-close':
      // The server must close its side too. (Requests sent with the FIN: fin-burst.ts.)
      socket.end();
      break;
  }
  await closed(socket);
}

/**
 * `cycles` connections, `concurrency` at a time, endings in turn; throws on the first one
 * that goes wrong. No new cycle starts after `budgetMs` (the result says how many ran).
 */
export async function churn(port: number, cycles: number, concurrency: number, budgetMs = Infinity): Promise<ChurnResult> {
  const endings = { clean: 0, 'mid-request': 0, reset: 0, 'half-close': 0 };
  let next = 0;
  const t0 = Date.now();
  let done = 0;
  const lane = async (): Promise<void> => {
    for (let i = next++; i < cycles && Date.now() - t0 < budgetMs; i = next++) {
      const ending = ENDINGS[i % ENDINGS.length]!;
      await cycle(port, i, ending);
      endings[ending]++;
      done++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  return { cycles: done, ms: Date.now() - t0, endings };
}

export const openFds = (): number => readdirSync('/proc/self/fd').length;

let collect: (() => void) | null = null;
/** RSS in bytes after a full GC of the main thread's heap. */
export function rssAfterGc(): number {
  if (!collect) {
    setFlagsFromString('--expose-gc');
    collect = runInNewContext('gc') as () => void;
  }
  collect();
  collect();
  return process.memoryUsage.rss();
}
