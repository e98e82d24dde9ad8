// The KCM building blocks on a real kernel (Debian 6.1 and 6.12, run.sh):
// createKcmMux on a loopback TCP connection, MessageWatcher on its KCM sockets
// (main thread and worker thread), replies, parser errors, hangups, fd leaks.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createKcmMux, loadNative, MessageWatcher, type KcmMux, type SysError } from '../../packages/native/src/index.js';
import { makeFrame, makeFrames, openFds, tcpPair, until, watchInWorker, writeChunked, type TcpPair } from '../../packages/native/test/frames.js';

const series = process.env.KMUX_KERNEL_SERIES;
const MAX = 512 * 1024;

let cleanup: (() => void)[] = [];
afterEach(() => {
  for (const fn of cleanup.reverse()) fn();
  cleanup = [];
});

beforeAll(() => {
  const native = loadNative();
  if (!native.ok) throw new Error(`@kmux/native did not load in the VM: ${native.reason}`);
});

interface Setup {
  pair: TcpPair;
  mux: KcmMux;
  hangups: SysError[];
}

async function setup(sockets: number): Promise<Setup> {
  const pair = await tcpPair();
  const hangups: SysError[] = [];
  const mux = createKcmMux(pair.serverFd, { maxFrameBytes: MAX, sockets, onHangup: (e) => hangups.push(e) });
  cleanup.push(() => {
    mux.close();
    pair.close();
  });
  return { pair, mux, hangups };
}

/** Index of a frame built by makeFrame (payload >= 4 bytes). */
const indexOf = (message: Buffer) => message.readUInt32BE(4);

function watch(fd: number, into: Buffer[], closes: (SysError | undefined)[] = []): MessageWatcher {
  const watcher = new MessageWatcher(fd, {
    maxFrameBytes: MAX,
    onMessages(data, offsets) {
      for (let i = 0; i + 1 < offsets.length; i++) into.push(Buffer.from(data.subarray(offsets[i], offsets[i + 1])));
    },
    onClose: (e) => closes.push(e),
  });
  cleanup.push(() => watcher.close());
  return watcher;
}

/** Every frame arrived once, intact, and each socket got its share in send order. */
function checkDelivery(sent: Buffer[], perSocket: Buffer[][]): void {
  const seen = new Set<number>();
  for (const got of perSocket) {
    let last = -1;
    for (const message of got) {
      const i = indexOf(message);
      expect(i, 'order within one KCM socket').toBeGreaterThan(last);
      last = i;
      expect(seen.has(i), `frame ${i} delivered twice`).toBe(false);
      seen.add(i);
      expect(message.equals(sent[i]), `frame ${i} (${sent[i].length} B) intact`).toBe(true);
    }
  }
  expect(seen.size).toBe(sent.length);
}

describe(`kernel ${series}: KCM mux`, () => {
  it('splits random frames (4 B .. 300 KiB, many per write, split across writes) over 3 KCM sockets', async () => {
    const { pair, mux, hangups } = await setup(3);
    const sent = makeFrames(2000, 1, 4, 300 * 1024);
    const got: Buffer[][] = mux.fds.map(() => []);
    mux.fds.forEach((fd, i) => watch(fd, got[i]));
    const t0 = Date.now();
    await writeChunked(pair.client, Buffer.concat(sent), 2);
    await until(() => got.reduce((n, g) => n + g.length, 0) >= sent.length, 'all frames');
    const ms = Date.now() - t0;
    checkDelivery(sent, got);
    const bytes = sent.reduce((n, f) => n + f.length, 0);
    console.log(`### ${series} KCM: ${sent.length} frames, ${(bytes / 1e6).toFixed(1)} MB in ${ms} ms; per socket ${got.map((g) => g.length).join('/')}`);
    expect(hangups).toEqual([]);
  });

  it('delivers zero-length frames as 4-byte messages', async () => {
    const { pair, mux } = await setup(1);
    const got: Buffer[] = [];
    watch(mux.fds[0], got);
    pair.client.write(Buffer.concat([makeFrame(0, 0), makeFrame(1, 0), makeFrame(2, 5), makeFrame(3, 0)]));
    await until(() => got.length === 4, '4 messages');
    expect(got.map((m) => m.length)).toEqual([4, 4, 9, 4]);
  });

  it('feeds a KCM socket read by a MessageWatcher in a worker thread, next to one in the main thread', async () => {
    const { pair, mux } = await setup(2);
    const sent = makeFrames(600, 3, 4, 100 * 1024);
    const inWorker = await watchInWorker(mux.fds[1], MAX);
    cleanup.push(() => void inWorker.stop());
    const mainGot: Buffer[] = [];
    watch(mux.fds[0], mainGot);
    await writeChunked(pair.client, Buffer.concat(sent), 4);
    await until(() => mainGot.length + inWorker.messages.length >= sent.length, 'all frames');
    expect(inWorker.threadId).toBeGreaterThan(0);
    expect(inWorker.messages.length, 'the worker thread got frames').toBeGreaterThan(0);
    checkDelivery(sent, [mainGot, inWorker.messages]);
    console.log(`### ${series} KCM + worker: main ${mainGot.length}, worker ${inWorker.messages.length} frames in ${inWorker.batches} batches`);
  });

  it('sends replies on a KCM socket that arrive at the TCP peer as whole frames, in order, through full buffers', async () => {
    const { pair, mux } = await setup(2);
    const replies = makeFrames(1500, 5, 4, 300 * 1024);
    const received: Buffer[] = [];
    // The peer reads nothing until the sender has hit a full buffer (a partial send).
    pair.client.pause();
    pair.client.on('data', (d: Buffer) => received.push(d));
    let next = 0;
    let offset = 0;
    let partials = 0;
    // Send until the kernel takes less than asked, then wait for writable and go on.
    const pump = () => {
      while (next < replies.length) {
        const rest = replies[next].subarray(offset);
        const n = watcher.send([rest]);
        if (n < rest.length) {
          partials++;
          pair.client.resume();
          offset += n; // SEQPACKET: the rest continues the same message
          watcher.waitWritable();
          return;
        }
        next++;
        offset = 0;
      }
    };
    const watcher = new MessageWatcher(mux.fds[1], { maxFrameBytes: MAX, onMessages() {}, onClose() {}, onWritable: pump });
    cleanup.push(() => watcher.close());
    pump();
    const total = replies.reduce((n, f) => n + f.length, 0);
    await until(() => received.reduce((n, d) => n + d.length, 0) >= total, 'all reply bytes');
    expect(Buffer.concat(received).equals(Buffer.concat(replies))).toBe(true);
    expect(partials, 'sends that hit a full buffer').toBeGreaterThan(0);
    console.log(`### ${series} KCM replies: ${replies.length} frames, ${(total / 1e6).toFixed(1)} MB, ${partials} partial sends`);
  });

  it('aborts on a length above maxFrameBytes: onHangup says EMSGSIZE, and closing resets the peer', async () => {
    const { pair, mux, hangups } = await setup(2);
    const got: Buffer[] = [];
    mux.fds.forEach((fd) => watch(fd, got));
    const bad = Buffer.alloc(8);
    bad.writeUInt32BE(MAX + 1);
    pair.client.write(Buffer.concat([makeFrame(0, 10), bad]));
    await until(() => hangups.length > 0, 'the hangup report');
    expect(hangups.map((e) => e.code)).toEqual(['EMSGSIZE']);
    expect(got.length).toBe(1);
    const peerClosed = new Promise((resolve) => pair.client.once('close', resolve));
    mux.close();
    pair.server.destroy();
    await peerClosed;
  });

  it('reports a peer FIN as EPIPE and a peer RST as ECONNRESET or EPIPE, once', async () => {
    const fin = await setup(1);
    fin.pair.client.end();
    await until(() => fin.hangups.length > 0, 'FIN report');
    const rst = await setup(1);
    rst.pair.client.resetAndDestroy();
    await until(() => rst.hangups.length > 0, 'RST report');
    await new Promise((r) => setTimeout(r, 100));
    expect(fin.hangups.map((e) => e.code)).toEqual(['EPIPE']);
    expect(rst.hangups).toHaveLength(1);
    expect(['ECONNRESET', 'EPIPE']).toContain(rst.hangups[0].code);
    console.log(`### ${series} KCM hangups: FIN -> ${fin.hangups[0].message}; RST -> ${rst.hangups[0].message}`);
  });

  it('leaks no fd over many connect / attach / watch / close cycles', async () => {
    const cycle = async () => {
      const pair = await tcpPair();
      const mux = createKcmMux(pair.serverFd, { maxFrameBytes: MAX, sockets: 2, onHangup() {} });
      const watchers = mux.fds.map((fd) => new MessageWatcher(fd, { maxFrameBytes: MAX, onMessages() {}, onClose() {} }));
      for (const w of watchers) w.close();
      mux.close();
      pair.close();
    };
    for (let i = 0; i < 20; i++) await cycle(); // warm up lazily opened fds
    const before = openFds();
    const budgetMs = 20_000;
    const t0 = Date.now();
    let cycles = 0;
    while (cycles < 10_000 && Date.now() - t0 < budgetMs) {
      await cycle();
      cycles++;
    }
    // Destroyed Node sockets close on a later loop turn: wait (bounded) for the count to settle.
    const settleBy = Date.now() + 5000;
    while (openFds() > before && Date.now() < settleBy) await new Promise((r) => setImmediate(r));
    const after = openFds();
    console.log(`### ${series} KCM fd check: ${cycles} cycles in ${Date.now() - t0} ms, fds ${before} -> ${after}`);
    // TCG on a loaded host did 480 in 20 s; a leak of one fd a cycle shows after a few.
    expect(cycles).toBeGreaterThanOrEqual(200);
    expect(after).toBeLessThanOrEqual(before);
  });
});
