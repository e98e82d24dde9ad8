// The frame count at a FIN (native/frame_tally.h): the pure decision, and the sockmap
// parser's count on this host, with whole frames, a frame cut short and a short header.
import { afterEach, describe, expect, it } from 'vitest';
import { createSockmap, framesInAll, type FrameTally } from '../src/index.js';
import { makeFrame, tcpPair, until } from './frames.js';

let cleanup: (() => void)[] = [];
afterEach(() => {
  for (const fn of cleanup.reverse()) fn();
  cleanup = [];
});

describe('framesInAll', () => {
  it('is final when the last parsed frame is incomplete, or fewer than 4 bytes follow it', () => {
    expect(framesInAll({ parsed: 3, end: 30, received: 30 })).toBe(3);
    expect(framesInAll({ parsed: 3, end: 30, received: 33 })).toBe(3); // a header cut short
    expect(framesInAll({ parsed: 3, end: 30, received: 25 })).toBe(2); // the third never completed
    expect(framesInAll({ parsed: 3, end: 30, received: 34 })).toBe('pending'); // a header to parse
    expect(framesInAll({ parsed: 0, end: 0, received: 0 })).toBe(0);
    expect(framesInAll({ parsed: 1, end: 10, received: -1 })).toBe('unknown'); // no FIN
  });

  it('counts modulo 2^32 like the kernel', () => {
    expect(framesInAll({ parsed: 0, end: 4, received: 2 ** 32 + 4 })).toBe(0);
    expect(framesInAll({ parsed: 5, end: 0xffff_fff0, received: 2 ** 32 + 0x10 })).toBe('pending');
  });
});

describe('sockmap framed()', () => {
  async function burst(bytes: Buffer): Promise<FrameTally> {
    const sockmap = createSockmap({ maxFrameBytes: 1 << 16, workers: 2, capacity: 4 });
    const pair = await tcpPair();
    const conn = sockmap.add(pair.serverFd, () => {});
    cleanup.push(() => {
      sockmap.close();
      pair.close();
    });
    pair.client.end(bytes);
    let tally = conn.framed();
    await until(() => {
      tally = conn.framed();
      return framesInAll(tally) !== 'pending' && tally.received >= 0;
    }, 'a final count');
    return tally;
  }

  it('counts whole frames at the FIN, not a frame cut short or a short header', async () => {
    const frames = [0, 1, 2, 3, 4].map((i) => makeFrame(i, 100 + i));
    const whole = Buffer.concat(frames);
    expect(framesInAll(await burst(whole))).toBe(5);
    expect(framesInAll(await burst(Buffer.concat([whole, makeFrame(5, 500).subarray(0, 50)])))).toBe(5);
    const tally = await burst(Buffer.concat([whole, Buffer.from([0, 0])]));
    expect(tally).toEqual({ parsed: 5, end: whole.length, received: whole.length + 2, refused: 0 });
    expect(framesInAll(tally)).toBe(5);
  });

  it('records the length it refused: an unframed Thrift message reads as one over 2 GiB', async () => {
    const whole = Buffer.concat([0, 1].map((i) => makeFrame(i, 100 + i)));
    const unframed = Buffer.from([0x80, 0x01, 0x00, 0x01, 0, 0, 0, 4, 0x65, 0x63, 0x68, 0x6f]);
    const pair = await tcpPair();
    const sockmap = createSockmap({ maxFrameBytes: 1 << 16, workers: 2, capacity: 4 });
    cleanup.push(() => {
      sockmap.close();
      pair.close();
    });
    const conn = sockmap.add(pair.serverFd, () => {});
    pair.client.write(Buffer.concat([whole, unframed]));
    await until(() => conn.framed().refused !== 0, 'the refused length');
    expect(conn.framed()).toMatchObject({ parsed: 2, refused: 0x80010001 });
  });
});
