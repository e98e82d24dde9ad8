// The sockmap data path on this host (root, CAP_BPF + CAP_NET_ADMIN): the BPF
// stream parser and verdict with the offset fix, per-(connection, worker)
// targets re-split by MessageWatcher, errors, worker threads, fd leaks.
import { afterEach, describe, expect, it } from 'vitest';
import { createSockmap, MessageWatcher, type SockmapConnection, type SysError } from '../src/index.js';
import { makeFrame, makeFrames, openFds, tcpPair, until, watchInWorker, writeChunked, type TcpPair } from './frames.js';

const MAX = 512 * 1024;
let cleanup: (() => void)[] = [];
afterEach(() => {
  for (const fn of cleanup.reverse()) fn();
  cleanup = [];
});

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

async function connect(workers: number) {
  const sockmap = createSockmap({ maxFrameBytes: MAX, workers, capacity: 8 });
  const pair = await tcpPair();
  const hangups: SysError[] = [];
  const conn = sockmap.add(pair.serverFd, (e) => hangups.push(e));
  cleanup.push(() => {
    sockmap.close();
    pair.close();
  });
  return { sockmap, pair, conn, hangups };
}

/** The verdict's policy: frame i of a connection goes to its target i % workers, in order. */
function expectRoundRobin(sent: Buffer[], perTarget: Buffer[][]): void {
  perTarget.forEach((got, w) => {
    const expected = sent.filter((_, i) => i % perTarget.length === w);
    expect(got.length, `target ${w} frame count`).toBe(expected.length);
    got.forEach((frame, k) => {
      if (!frame.equals(expected[k])) throw new Error(`target ${w}, frame ${k} (sent #${k * perTarget.length + w}, ${expected[k].length} B) differs`);
    });
  });
}

describe('sockmap', () => {
  it('splits 3 frames coalesced in one write (the offset pitfall)', async () => {
    const { pair, conn } = await connect(1);
    const got: Buffer[] = [];
    watch(conn.fds[0], got);
    const sent = [makeFrame(0, 5), makeFrame(1, 23), makeFrame(2, 62)];
    pair.client.write(Buffer.concat(sent));
    await until(() => got.length === 3, '3 frames');
    expect(got).toEqual(sent);
  });

  it('delivers 4000 random frames (0 B .. 300 KiB) written in random chunks, intact and round-robin in order', async () => {
    const { pair, conn, hangups } = await connect(3);
    const sent = makeFrames(4000, 11, 0, 300 * 1024);
    const got: Buffer[][] = conn.fds.map(() => []);
    conn.fds.forEach((fd, w) => watch(fd, got[w]));
    const t0 = Date.now();
    await writeChunked(pair.client, Buffer.concat(sent), 12);
    await until(() => got.reduce((n, g) => n + g.length, 0) >= sent.length, 'all frames');
    const bytes = sent.reduce((n, f) => n + f.length, 0);
    console.log(`sockmap: ${sent.length} frames, ${(bytes / 1e6).toFixed(1)} MB in ${Date.now() - t0} ms`);
    expectRoundRobin(sent, got);
    expect(hangups).toEqual([]);
  });

  it('parses bytes that were queued before the insert (SO_RCVLOWAT kick)', async () => {
    const sockmap = createSockmap({ maxFrameBytes: MAX, workers: 1, capacity: 1 });
    const pair = await tcpPair();
    cleanup.push(() => {
      sockmap.close();
      pair.close();
    });
    pair.client.write(Buffer.concat([makeFrame(0, 10), makeFrame(1, 20)]));
    await new Promise((r) => setTimeout(r, 50));
    const conn = sockmap.add(pair.serverFd, () => {});
    const got: Buffer[] = [];
    watch(conn.fds[0], got);
    await until(() => got.length === 2, 'the queued frames');
  });

  it('keeps connections apart: each has its own targets', async () => {
    const sockmap = createSockmap({ maxFrameBytes: MAX, workers: 2, capacity: 4 });
    const pairs: TcpPair[] = [await tcpPair(), await tcpPair()];
    cleanup.push(() => {
      sockmap.close();
      for (const p of pairs) p.close();
    });
    const conns: SockmapConnection[] = pairs.map((p) => sockmap.add(p.serverFd, () => {}));
    expect(conns.map((c) => c.slot)).toEqual([0, 1]);
    const sent = [makeFrames(500, 21, 0, 80 * 1024), makeFrames(500, 22, 0, 80 * 1024)];
    const got = conns.map((c) => c.fds.map(() => [] as Buffer[]));
    conns.forEach((c, k) => c.fds.forEach((fd, w) => watch(fd, got[k][w])));
    await Promise.all(pairs.map((p, k) => writeChunked(p.client, Buffer.concat(sent[k]), 30 + k)));
    await until(() => got.flat().reduce((n, g) => n + g.length, 0) >= 1000, 'all frames');
    expectRoundRobin(sent[0], got[0]);
    expectRoundRobin(sent[1], got[1]);
  });

  it('reports a length above maxFrameBytes as EMSGSIZE on the connection', async () => {
    const { pair, conn, hangups } = await connect(1);
    const got: Buffer[] = [];
    watch(conn.fds[0], got);
    const bad = Buffer.alloc(8);
    bad.writeUInt32BE(MAX + 1);
    pair.client.write(Buffer.concat([makeFrame(0, 10), bad]));
    await until(() => hangups.length > 0, 'the hangup report');
    expect(hangups.map((e) => e.code)).toEqual(['EMSGSIZE']);
    // The frame before the bad one was parsed; its redirect runs from a work
    // queue, so it may reach the target after the hangup report.
    await until(() => got.length === 1, 'the frame before the bad length', 3000);
    const peerClosed = new Promise((resolve) => pair.client.once('close', resolve));
    conn.remove();
    pair.server.destroy();
    await peerClosed;
  });

  it('reports a peer close once; remove() ends the targets and frees them', async () => {
    const fdsBefore = openFds();
    const { pair, conn, hangups } = await connect(2);
    const got: Buffer[] = [];
    const closes: (SysError | undefined)[][] = [[], []];
    const watchers = conn.fds.map((fd, w) => watch(fd, got, closes[w]));
    pair.client.end(Buffer.concat([makeFrame(0, 1), makeFrame(1, 2)]));
    await until(() => hangups.length > 0 && got.length === 2, 'the hangup report and both frames');
    expect(hangups.map((e) => e.code)).toEqual(['EOF']);
    for (const w of watchers) w.close();
    conn.remove();
    conn.remove(); // idempotent
    for (const fn of cleanup.splice(0).reverse()) fn();
    await new Promise((r) => setTimeout(r, 50));
    expect(openFds()).toBeLessThanOrEqual(fdsBefore);
  });

  it('re-splits a target stream in a worker thread', async () => {
    const { pair, conn } = await connect(2);
    const sent = makeFrames(1000, 41, 0, 100 * 1024);
    const inWorker = await watchInWorker(conn.fds[1], MAX);
    cleanup.push(() => void inWorker.stop());
    const mainGot: Buffer[] = [];
    watch(conn.fds[0], mainGot);
    await writeChunked(pair.client, Buffer.concat(sent), 42);
    await until(() => mainGot.length + inWorker.messages.length >= sent.length, 'all frames');
    expect(inWorker.threadId).toBeGreaterThan(0);
    expectRoundRobin(sent, [mainGot, inWorker.messages]);
    await inWorker.stop();
  });

  it('reports a stream that ends inside a frame as EPROTO, and a length above maxFrameBytes as EMSGSIZE', async () => {
    const a = await tcpPair();
    const b = await tcpPair();
    cleanup.push(() => {
      a.close();
      b.close();
    });
    const closes: (SysError | undefined)[] = [];
    watch(a.serverFd, [], closes);
    watch(b.serverFd, [], closes);
    a.client.end(makeFrame(0, 100).subarray(0, 50));
    const bad = Buffer.alloc(4);
    bad.writeUInt32BE(MAX + 1);
    b.client.write(bad);
    await until(() => closes.length === 2, 'both reports');
    expect(closes.map((e) => e?.code).sort()).toEqual(['EMSGSIZE', 'EPROTO']);
  });

  it('leaks no fd over 1000 connect / add / watch / remove cycles and 100 sockmap create / close cycles', async () => {
    const sockmap = createSockmap({ maxFrameBytes: MAX, workers: 2, capacity: 4 });
    cleanup.push(() => sockmap.close());
    const cycle = async () => {
      const pair = await tcpPair();
      const conn = sockmap.add(pair.serverFd, () => {});
      const got: Buffer[] = [];
      const watchers = conn.fds.map((fd) => new MessageWatcher(fd, { maxFrameBytes: MAX, onMessages: (d) => got.push(d), onClose() {} }));
      pair.client.write(Buffer.concat([makeFrame(0, 8), makeFrame(1, 8)]));
      await until(() => got.length === 2, 'a frame per target');
      for (const w of watchers) w.close();
      conn.remove();
      pair.close();
    };
    for (let i = 0; i < 20; i++) await cycle();
    const before = openFds();
    const t0 = Date.now();
    for (let i = 0; i < 1000; i++) await cycle();
    for (let i = 0; i < 100; i++) createSockmap({ maxFrameBytes: MAX, workers: 4, capacity: 64 }).close();
    await new Promise((r) => setTimeout(r, 100));
    const after = openFds();
    console.log(`sockmap fd check: 1000 + 100 cycles in ${Date.now() - t0} ms, fds ${before} -> ${after}`);
    expect(after).toBeLessThanOrEqual(before);
  });
});
