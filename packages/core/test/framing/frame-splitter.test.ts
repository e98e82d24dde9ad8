import { describe, expect, it } from 'vitest';
import { FrameSplitter, FrameTooLargeError, LENGTH_PREFIX_BYTES, encodeFrame } from '@kmux/core';
import { prng } from '../random.js';

const SEED = 0x6b6d7578;

/** Random frame bodies, each filled with its index so that swaps and shifts show. */
function randomBodies(count: number, seed: number): Buffer[] {
  const random = prng(seed);
  return Array.from({ length: count }, (_, i) => {
    const roll = random.next();
    const size =
      roll < 0.1 ? 0 : roll < 0.5 ? random.int(1, 16) : roll < 0.8 ? random.int(17, 2000) : roll < 0.96 ? random.int(2001, 65536) : random.int(65537, 150_000);
    const body = Buffer.alloc(size, (i * 31 + 7) & 0xff);
    if (size >= 4) body.writeUInt32BE(i, 0);
    if (size >= 8) body.writeUInt32BE(i, size - 4);
    return body;
  });
}

/** Feeds `stream` in chunks of the sizes `nextSize` picks and returns the bodies that come out. */
function split(stream: Buffer, nextSize: () => number, limit = 1 << 20): { bodies: Buffer[]; splitter: FrameSplitter } {
  const splitter = new FrameSplitter(limit);
  const bodies: Buffer[] = [];
  for (let at = 0; at < stream.length; ) {
    const end = Math.min(stream.length, at + Math.max(1, nextSize()));
    splitter.push(stream.subarray(at, end), (body) => bodies.push(Buffer.from(body)));
    at = end;
  }
  return { bodies, splitter };
}

function expectSameBodies(actual: Buffer[], expected: Buffer[]): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    if (!actual[i]!.equals(expected[i]!)) {
      throw new Error(`frame ${i}: got ${actual[i]!.length} bytes, expected ${expected[i]!.length} (or contents differ)`);
    }
  }
}

describe('FrameSplitter', () => {
  const bodies = randomBodies(2500, SEED);
  const stream = Buffer.concat(bodies.map(encodeFrame));

  it('has frames of every size class in the random stream', () => {
    expect(bodies.filter((b) => b.length === 0).length).toBeGreaterThan(100);
    expect(bodies.filter((b) => b.length > 65536).length).toBeGreaterThan(50);
  });

  it('returns every body in order when the stream is re-chunked at random boundaries', () => {
    const random = prng(SEED + 1);
    // Each chunk's size class is random too: single bytes, bits of a header, many frames at once.
    const classes = [1, 2, 3, 5, 64, 1500, 16_384, 300_000];
    const { bodies: out, splitter } = split(stream, () => random.int(1, classes[random.int(0, classes.length - 1)]!));
    expectSameBodies(out, bodies);
    expect(splitter.bufferedBytes).toBe(0);
  });

  it('returns every body in order with cuts placed inside headers, inside bodies and between frames', () => {
    const random = prng(SEED + 3);
    const cuts = new Set<number>();
    let headerCuts = 0;
    let at = 0;
    for (const body of bodies) {
      const roll = random.next();
      if (roll < 0.3) {
        cuts.add(at + random.int(1, LENGTH_PREFIX_BYTES - 1)); // inside the header
        headerCuts++;
      } else if (roll < 0.45) cuts.add(at + LENGTH_PREFIX_BYTES + random.int(0, body.length)); // in or right after the body
      else if (roll < 0.5) cuts.add(at); // on the frame boundary; otherwise frames share a chunk
      at += LENGTH_PREFIX_BYTES + body.length;
    }
    expect(headerCuts).toBeGreaterThan(500);
    const ends = [...cuts, stream.length].sort((a, b) => a - b);
    const splitter = new FrameSplitter(1 << 20);
    const out: Buffer[] = [];
    let start = 0;
    for (const end of ends) {
      splitter.push(stream.subarray(start, end), (body) => out.push(Buffer.from(body)));
      start = end;
    }
    expectSameBodies(out, bodies);
    expect(splitter.bufferedBytes).toBe(0);
  });

  it('returns every body from one chunk holding the whole stream', () => {
    const { bodies: out } = split(stream, () => stream.length);
    expectSameBodies(out, bodies);
  });

  it('returns every body when fed one byte at a time', () => {
    const small = randomBodies(400, SEED + 2).filter((b) => b.length <= 3000);
    const { bodies: out, splitter } = split(Buffer.concat(small.map(encodeFrame)), () => 1);
    expectSameBodies(out, small);
    expect(splitter.bufferedBytes).toBe(0);
  });

  it('handles a split at every pair of positions, including inside headers', () => {
    const small = [Buffer.alloc(0), Buffer.from('a'), Buffer.from('hello'), Buffer.alloc(0), Buffer.from('0123456789abc')];
    const whole = Buffer.concat(small.map(encodeFrame));
    for (let i = 0; i <= whole.length; i++) {
      for (let j = i; j <= whole.length; j++) {
        const splitter = new FrameSplitter(64);
        const out: Buffer[] = [];
        for (const chunk of [whole.subarray(0, i), whole.subarray(i, j), whole.subarray(j)]) {
          splitter.push(chunk, (body) => out.push(Buffer.from(body)));
        }
        expectSameBodies(out, small);
      }
    }
  });

  it('returns frames lying inside one chunk as views of it, without copying', () => {
    const chunk = Buffer.concat([encodeFrame(Buffer.from('one')), encodeFrame(Buffer.from('two'))]);
    const views: Buffer[] = [];
    new FrameSplitter(64).push(chunk, (body) => views.push(body));
    expect(views.map((v) => v.toString())).toEqual(['one', 'two']);
    for (const view of views) expect(view.buffer).toBe(chunk.buffer);
  });

  it('emits zero-length frames', () => {
    const splitter = new FrameSplitter(16);
    const out: Buffer[] = [];
    splitter.push(Buffer.alloc(LENGTH_PREFIX_BYTES * 10), (body) => out.push(body));
    expect(out).toHaveLength(10);
    for (const body of out) expect(body.length).toBe(0);
    // A zero-length frame whose header is split.
    splitter.push(Buffer.alloc(3), (body) => out.push(body));
    expect(out).toHaveLength(10);
    expect(splitter.bufferedBytes).toBe(3);
    splitter.push(Buffer.alloc(1), (body) => out.push(body));
    expect(out).toHaveLength(11);
    expect(splitter.bufferedBytes).toBe(0);
  });

  it('accepts a frame of exactly maxFrameBytes, whole and split', () => {
    const body = Buffer.alloc(1024, 7);
    const frame = encodeFrame(body);
    const out: Buffer[] = [];
    const splitter = new FrameSplitter(1024);
    splitter.push(frame, (b) => out.push(Buffer.from(b)));
    splitter.push(frame.subarray(0, 2), (b) => out.push(Buffer.from(b)));
    splitter.push(frame.subarray(2, 600), (b) => out.push(Buffer.from(b)));
    expect(splitter.bufferedBytes).toBe(600);
    splitter.push(frame.subarray(600), (b) => out.push(Buffer.from(b)));
    expect(out).toHaveLength(2);
    expect(out[0]!.equals(body) && out[1]!.equals(body)).toBe(true);
  });

  it('throws FrameTooLargeError on the header alone, before any body arrives', () => {
    const header = Buffer.alloc(4);
    header.writeUInt32BE(1025);
    const error = (() => {
      try {
        new FrameSplitter(1024).push(header, () => {});
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(FrameTooLargeError);
    expect(error).toMatchObject({ kind: 'frame_too_large', length: 1025, limit: 1024 });
  });

  it('throws FrameTooLargeError when the oversized header arrives split', () => {
    const header = Buffer.from([0xff, 0xff, 0xff, 0xff]);
    const splitter = new FrameSplitter(1 << 20);
    splitter.push(header.subarray(0, 1), () => {});
    splitter.push(header.subarray(1, 3), () => {});
    expect(() => splitter.push(header.subarray(3), () => {})).toThrow(FrameTooLargeError);
  });

  it('emits the frames before an oversized header in the same chunk, then throws', () => {
    const oversized = Buffer.alloc(4);
    oversized.writeUInt32BE(65);
    const out: string[] = [];
    const chunk = Buffer.concat([encodeFrame(Buffer.from('ok')), oversized]);
    expect(() => new FrameSplitter(64).push(chunk, (b) => out.push(b.toString()))).toThrow(FrameTooLargeError);
    expect(out).toEqual(['ok']);
  });

  it('encodeFrame prefixes the big-endian length', () => {
    expect([...encodeFrame(Buffer.from('abc'))]).toEqual([0, 0, 0, 3, 0x61, 0x62, 0x63]);
    expect([...encodeFrame(new Uint8Array(0))]).toEqual([0, 0, 0, 0]);
  });
});
