// Test helpers shared by the host sockmap tests and the VM KCM tests: random
// length-prefixed frames, a TCP pair whose server side Node never reads, and
// writes in random chunks with many frames per write.
import { readdirSync } from 'node:fs';
import net from 'node:net';

/** Deterministic PRNG (mulberry32), so a failure can be replayed from its seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Payload sizes: mostly small, some over a page, a few up to maxBig bytes. */
export function randomSize(random: () => number, minSize: number, maxBig: number): number {
  const r = random();
  const size =
    r < 0.7 ? Math.floor(random() * 200)
    : r < 0.9 ? 200 + Math.floor(random() * 8000)
    : r < 0.99 ? 8192 + Math.floor(random() * 56000)
    : 65536 + Math.floor(random() * (maxBig - 65536));
  return Math.max(minSize, size);
}

/** Frame i: 4-byte BE length, then (if it fits) i as u32 BE, then bytes derived from i. */
export function makeFrame(index: number, size: number): Buffer {
  const frame = Buffer.allocUnsafe(4 + size);
  frame.writeUInt32BE(size, 0);
  for (let j = 4; j < frame.length; j++) frame[j] = (index * 31 + j) & 0xff;
  if (size >= 4) frame.writeUInt32BE(index, 4);
  return frame;
}

export function makeFrames(count: number, seed: number, minSize: number, maxBig: number): Buffer[] {
  const random = rng(seed);
  return Array.from({ length: count }, (_, i) => makeFrame(i, randomSize(random, minSize, maxBig)));
}

/** Writes the bytes in random chunks of 1 B .. 64 KiB, waiting for 'drain' when Node buffers. */
export async function writeChunked(socket: net.Socket, bytes: Buffer, seed: number): Promise<void> {
  const random = rng(seed);
  for (let off = 0; off < bytes.length; ) {
    const n = Math.min(bytes.length - off, 1 + Math.floor(random() * 65536));
    const more = socket.write(bytes.subarray(off, off + n));
    off += n;
    if (!more) await new Promise((resolve) => socket.once('drain', resolve));
  }
}

export interface TcpPair {
  client: net.Socket;
  /** Accepted with pauseOnConnect: Node never reads it, so a kernel framer can take it. */
  server: net.Socket;
  serverFd: number;
  close(): void;
}

export async function tcpPair(): Promise<TcpPair> {
  const listener = net.createServer({ pauseOnConnect: true });
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const accepted = new Promise<net.Socket>((resolve) => listener.once('connection', resolve));
  const client = net.connect((listener.address() as net.AddressInfo).port, '127.0.0.1');
  client.on('error', () => {}); // tests look at 'close' and at what the kernel reported
  await new Promise((resolve) => client.once('connect', resolve));
  const server = await accepted;
  server.on('error', () => {});
  listener.close();
  const serverFd = (server as unknown as { _handle: { fd: number } })._handle.fd;
  return {
    client,
    server,
    serverFd,
    close() {
      client.destroy();
      server.destroy();
    },
  };
}

export function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

export function until(predicate: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const start = Date.now();
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (predicate()) return resolve();
      if (Date.now() - start > timeoutMs) return reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      setTimeout(tick, 5);
    };
    tick();
  });
}

export interface WorkerWatch {
  /** Messages the worker's MessageWatcher delivered so far (copies). */
  messages: Buffer[];
  batches: number;
  threadId: number;
  closed: { code: string; message?: string } | null;
  /** Closes the worker's watcher and waits for the worker to exit. */
  stop(): Promise<void>;
}

/** Starts fixtures/watch-in-worker.mjs on fd; resolves once its watcher runs. */
export async function watchInWorker(fd: number, maxFrameBytes: number): Promise<WorkerWatch> {
  const { Worker } = await import('node:worker_threads');
  const worker = new Worker(new URL('./fixtures/watch-in-worker.mjs', import.meta.url), { workerData: { fd, maxFrameBytes } });
  const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
  const watch: WorkerWatch = {
    messages: [],
    batches: 0,
    threadId: worker.threadId,
    closed: null,
    async stop() {
      worker.postMessage('stop');
      const code = await exited;
      if (code !== 0) throw new Error(`worker exited with ${code}`);
    },
  };
  await new Promise<void>((resolve, reject) => {
    worker.on('message', (m) => {
      if (m.ready) resolve();
      if (m.messages) {
        watch.batches++;
        for (const message of m.messages) watch.messages.push(Buffer.from(message));
      }
      if (m.closed) watch.closed = m.closed;
    });
    worker.once('error', reject);
  });
  return watch;
}
