/**
 * Fuzz target: FrameSplitter (packages/core/src/framing/frame-splitter.ts).
 *
 * Input: byte 0 picks maxFrameBytes, bytes 1–4 seed the chunking, the rest is the byte
 * stream a client sends. Properties:
 * - push() either yields frames or throws FrameTooLargeError (kind frame_too_large, with
 *   the offending length and the limit); nothing else;
 * - the frames are exactly those of a straightforward reference parse, in order, however
 *   the stream is cut into chunks (one chunk; random cuts, empty chunks included);
 * - the error is thrown exactly when the reference parse meets a length above the limit,
 *   after exactly the frames before it;
 * - no frame exceeds the limit, and what stays buffered is exactly the incomplete tail
 *   (so memory held is at most 4 + maxFrameBytes per connection).
 */
import { prng } from '../lib/prng.mjs';

export const coverage = ['packages/core/dist/framing/frame-splitter.js'];
export const maxLen = 64 * 1024;
export const LIMITS = [1, 4, 5, 16, 255, 256, 1024, 4096, 65535];
export const ints = [...LIMITS, ...LIMITS.map((l) => l + 1)];
export const dictionary = [Buffer.from([0, 0, 0, 0]), Buffer.from([0, 0, 0, 1]), Buffer.from([0, 0, 4, 0]), Buffer.from([0, 0, 4, 1]), Buffer.from([0xff, 0xff, 0xff, 0xff])];

let FrameSplitter;
let encodeFrame;

export async function setup() {
  ({ FrameSplitter, encodeFrame } = await import('@kmux/core'));
}

/** Seeds: well-formed streams of frames of assorted sizes for a few limits. */
export function seeds() {
  const frames = (sizes) => Buffer.concat(sizes.map((n) => encodeFrame(Buffer.alloc(n, n & 0xff))));
  return [
    Buffer.concat([Buffer.from([6, 0, 0, 0, 1]), frames([0, 1, 5, 100, 1024])]),
    Buffer.concat([Buffer.from([3, 0, 0, 0, 2]), frames([16, 16, 3])]),
    Buffer.concat([Buffer.from([7, 1, 2, 3, 4]), frames([4096]), Buffer.from([0, 0, 0x10, 0x01])]),
  ];
}

function reference(stream, limit) {
  const frames = [];
  let at = 0;
  while (stream.length - at >= 4) {
    const length = stream.readUInt32BE(at);
    if (length > limit) return { frames, tooLarge: length, rest: -1 };
    if (at + 4 + length > stream.length) break;
    frames.push(stream.subarray(at + 4, at + 4 + length));
    at += 4 + length;
  }
  return { frames, tooLarge: -1, rest: stream.length - at };
}

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

function split(chunks, limit) {
  const splitter = new FrameSplitter(limit);
  const frames = [];
  let error = null;
  try {
    // Copies: a frame may be a view into its chunk, so keep what we compare.
    for (const chunk of chunks) splitter.push(chunk, (body) => frames.push(Buffer.from(body)));
  } catch (thrown) {
    error = thrown;
  }
  return { frames, error, buffered: splitter.bufferedBytes };
}

export function check(input) {
  if (input.length < 5) return;
  const limit = LIMITS[input[0] % LIMITS.length];
  const stream = input.subarray(5);
  const expected = reference(stream, limit);

  const rng = prng(input.readUInt32BE(1));
  const cuts = [];
  for (let at = 0; at < stream.length; ) {
    const size = rng.chance(0.05) ? 0 : rng.int(1, rng.chance(0.5) ? 8 : 2048);
    cuts.push(Buffer.from(stream.subarray(at, at + size)));
    at += size;
  }
  for (const [how, chunks] of [['one chunk', [stream]], ['random chunks', cuts]]) {
    const got = split(chunks, limit);
    const where = `${how}, limit ${limit}`;
    assert(got.frames.length === expected.frames.length, `${where}: ${got.frames.length} frames, reference ${expected.frames.length}`);
    got.frames.forEach((frame, i) => {
      assert(frame.length <= limit, `${where}: frame ${i} of ${frame.length} bytes exceeds the limit`);
      assert(frame.equals(expected.frames[i]), `${where}: frame ${i} differs from the reference`);
    });
    if (expected.tooLarge >= 0) {
      assert(got.error !== null, `${where}: length ${expected.tooLarge} above the limit was not refused`);
      assert(got.error.name === 'FrameTooLargeError' && got.error.kind === 'frame_too_large', `${where}: threw ${got.error}`);
      assert(got.error.length === expected.tooLarge && got.error.limit === limit, `${where}: error says ${got.error.message}`);
    } else {
      if (got.error) throw new Error(`${where}: unexpected ${got.error.stack ?? got.error}`);
      assert(got.buffered === expected.rest, `${where}: ${got.buffered} bytes buffered, ${expected.rest} left over`);
      assert(got.buffered <= 4 + limit, `${where}: ${got.buffered} bytes buffered for limit ${limit}`);
    }
  }
}
