// End-to-end fuzzing: mutated frames from the committed corpora, sent over real sockets to
// a real Server (2 workers) for each codec, several hostile connections at a time, while a
// well-behaved client keeps calling. A reference model — the codec's own peek and the frame
// limit — predicts each connection's fate, and the test holds the server to it:
//
// - a frame the server cannot accept (length above maxFrameBytes, head the codec cannot
//   read) closes that connection, and only that one, counted under its reason; nothing
//   after it runs; replies that made it out before are replies to earlier frames (on KCM and
//   sockmap the kernel has already handed later frames to other workers, which may answer
//   them, and may report an oversized length behind an unreadable frame first: see Fate);
// - every other frame gets exactly one reply (none for oneway; a Thrift CALL naming a
//   oneway method may get one or none, finding 4 in test/reliability/README.md), with its
//   own id, that parses as a reply of the protocol: an answer or a typed error;
// - a connection that half-closes gets all its replies, then is closed by the server;
// - the good client gets every answer right, throughout;
// - at the end nothing is in flight and no connection is left open.
import { afterAll, describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Server, encodeFrame, rawCodec, type ServerCodec } from '@kmux/core';
import { thriftCodec } from '@kmux/thrift';
import { mutate } from './lib/mutate.mjs';
import { prng } from './lib/prng.mjs';
import { CORPUS_DIR } from './lib/run-fuzzer.js';
import { dictionary as rawDictionary } from './targets/raw-wire.mjs';
import { dictionary as thriftDictionary } from './targets/thrift-worker.mjs';
import { SOAK, TRANSPORTS, report, sized, timeoutMs } from '../reliability/lib/mode.js';
import { closeAll, until } from '../reliability/lib/harness.js';
import { startGoodClient } from '../reliability/lib/good-client.js';
import { EXAMPLE_DIR, FrameSocket, WIRES, type WireName } from '../reliability/lib/wire.js';

afterAll(closeAll);

const MAX_FRAME = 4096;
const FUZZ_RAW_HANDLER = fileURLToPath(new URL('./fixtures/raw-handler.mjs', import.meta.url));
const BOUNDED_CATALOG = fileURLToPath(new URL('./fixtures/catalog-bounded-handler.cjs', import.meta.url));

interface Case {
  readonly wire: WireName;
  readonly corpus: string;
  readonly dictionary: readonly Buffer[];
  codec(): ServerCodec;
  /** Thrift methods declared oneway: a CALL naming one may or may not be answered. */
  readonly onewayMethods: ReadonlySet<string>;
  /** Names the corpus calls often, for lanes: on native the I/O thread then reads every hostile head's method (slow_methods.cc). */
  readonly slowMethods: readonly string[];
}

const CASES: readonly Case[] = [
  { wire: 'raw', corpus: 'raw-wire', dictionary: rawDictionary, codec: () => rawCodec({ handler: FUZZ_RAW_HANDLER }), onewayMethods: new Set(), slowMethods: ['echo', 'upper'] },
  ...(['binary', 'compact'] as const).map(
    (protocol): Case => ({
      wire: `thrift-${protocol}`,
      corpus: `thrift-worker-${protocol}`,
      dictionary: thriftDictionary,
      codec: () => thriftCodec({ service: `${EXAMPLE_DIR}gen-nodejs/Catalog.js`, handler: BOUNDED_CATALOG, protocol }),
      onewayMethods: new Set(['recordView']),
      slowMethods: ['lookup', 'hashRounds'],
    }),
  ),
];

function loadCorpus(name: string): Buffer[] {
  const dir = `${CORPUS_DIR}${name}/`;
  return readdirSync(dir)
    .filter((f) => f.endsWith('.bin'))
    .sort()
    .map((f) => readFileSync(dir + f));
}

type CloseReason = 'protocol' | 'frame_too_large';

/**
 * `replies` must all come; `optional` may (each at most once); nothing else may. On a close,
 * replies may come for `repliesBeforeClose` (user space) or `repliesIfKernel` (below).
 */
type Fate = {
  close: null | CloseReason;
  replies: number[];
  optional: number[];
  repliesBeforeClose: number[];
  /**
   * A kernel transport (KCM, sockmap) hands whole frames to the workers before any of them
   * reads a head, so frames after an unreadable one may already be running on another worker
   * when the close comes: any readable frame the kernel parser passed may be answered.
   */
  repliesIfKernel: number[];
  /**
   * An unreadable frame followed by an oversized length: the kernel parser may report the
   * length (frame_too_large) before a worker reads the frame (protocol); either reason may count.
   */
  eitherReasonIfKernel: boolean;
  /** The length the parser refused (over MAX_FRAME), if it stopped at one. */
  refusedLength: number | null;
};

/** What the server must do with this stream of frames, by the codec's own peek. */
function predict(codec: ServerCodec, frames: Buffer[], oneway: ReadonlySet<string>): Fate {
  const replies: number[] = [];
  const optional: number[] = [];
  const readable: number[] = [];
  let close: CloseReason | null = null;
  let repliesBeforeClose: number[] = [];
  let eitherReasonIfKernel = false;
  let refusedLength: number | null = null;
  for (const wire of frames) {
    const length = wire.readUInt32BE(0);
    if (length > MAX_FRAME) {
      // The parser stops here: nothing after an oversized length is framed.
      eitherReasonIfKernel = close === 'protocol';
      refusedLength = length;
      if (!close) repliesBeforeClose = [...replies, ...optional];
      close ??= 'frame_too_large';
      break;
    }
    let head;
    try {
      head = codec.peek(wire.subarray(4));
    } catch {
      if (!close) repliesBeforeClose = [...replies, ...optional];
      close ??= 'protocol';
      continue;
    }
    if (head.oneway) continue;
    // A Thrift CALL naming a oneway method gets no reply when its arguments decode (as
    // from a stock Thrift server) and an exception when they do not: either is accepted
    // here (finding 4 in test/reliability/README.md).
    readable.push(head.id);
    if (close) continue;
    if (oneway.has(head.method)) optional.push(head.id);
    else replies.push(head.id);
  }
  if (close) return { close, replies: [], optional: [], repliesBeforeClose, repliesIfKernel: readable, eitherReasonIfKernel, refusedLength };
  return { close: null, replies, optional, repliesBeforeClose: [...replies, ...optional], repliesIfKernel: readable, eitherReasonIfKernel: false, refusedLength };
}

/** Whether `got` holds every id of `required` and otherwise only ids of `optional`. */
function matchesFate(got: number[], required: number[], optional: number[]): boolean {
  const counts = multiset(got);
  for (const id of required) {
    const left = counts.get(id) ?? 0;
    if (left === 0) return false;
    counts.set(id, left - 1);
  }
  const rest = [...counts].flatMap(([id, n]) => Array<number>(n).fill(id));
  return isSubMultiset(rest, optional);
}

function multiset(ids: number[]): Map<number, number> {
  const counts = new Map<number, number>();
  for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
  return counts;
}

function isSubMultiset(sub: number[], of: number[]): boolean {
  const counts = multiset(of);
  for (const id of sub) {
    const left = counts.get(id) ?? 0;
    if (left === 0) return false;
    counts.set(id, left - 1);
  }
  return true;
}

/** Errors a reply to a hostile-but-readable frame may carry. Never worker_died or overloaded here. */
const TYPED_ERRORS = new Set(['unknown_method', 'handler', 'bad_request', 'protocol', 'declared', 'deadline_exceeded']);

for (const transport of TRANSPORTS) {
  describe(`hostile frames over ${transport} sockets`, () => {
    for (const fuzzCase of CASES) {
      it(
        `${fuzzCase.wire}: each bad frame closes only its connection or fails only its request; a good client is unaffected`,
        async () => {
          const wire = WIRES[fuzzCase.wire];
          const codec = fuzzCase.codec();
          const server = new Server({
            codec,
            workers: 2,
            transport,
            maxFrameBytes: MAX_FRAME,
            deadlineMs: 2000,
            slowMethods: fuzzCase.slowMethods,
            logger: { info() {}, warn() {}, error() {} },
          });
          const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
          try {
            const corpus = loadCorpus(fuzzCase.corpus);
            const seed = Number(process.env.KMUX_FUZZ_SEED ?? (SOAK ? Date.now() % 2 ** 31 : 77));
            const rng = prng(seed);
            const connections = sized(400, 50_000, 'KMUX_FUZZ_CONNECTIONS', 60);
            const parallel = 4;
            const good = await startGoodClient(wire, port);
            const kernel = transport !== 'userspace';
            const expectedCloses = { protocol: 0, frame_too_large: 0 };
            // Closes predicted as protocol that a kernel transport may count as frame_too_large.
            let eitherReason = 0;
            // Refusals of those that a kernel transport names `unframed` instead of frame_too_large.
            let unframedRefusals = 0;
            const failures: string[] = [];
            let frames = 0;
            let replies = 0;

            const oneConnection = async (index: number): Promise<void> => {
              const count = rng.int(1, 6);
              const bodies = Array.from({ length: count }, () => {
                const parent = rng.pick(corpus);
                // Mostly light edits, which keep heads readable and reach the workers.
                return rng.chance(0.2)
                  ? parent
                  : mutate(parent, rng, { corpus, dictionary: fuzzCase.dictionary, maxLen: MAX_FRAME + 64, maxEditsLog2: rng.chance(0.7) ? 1 : 4 });
              });
              const wireFrames = bodies.map((body) => {
                const framed = encodeFrame(body);
                // Now and then a length prefix that lies, in either direction.
                if (rng.chance(0.05)) framed.writeUInt32BE(rng.pick([MAX_FRAME + 1, 0x7fffffff, 0xffffffff, Math.max(0, body.length - 1)]), 0);
                return framed;
              });
              // A lying prefix shorter than the body shifts every later frame: the model
              // reads the stream as the server will.
              const stream = Buffer.concat(wireFrames);
              const parsed: Buffer[] = [];
              let at = 0;
              while (stream.length - at >= 4) {
                const length = stream.readUInt32BE(at);
                if (length > MAX_FRAME) {
                  parsed.push(stream.subarray(at, at + 4));
                  break;
                }
                if (at + 4 + length > stream.length) break;
                parsed.push(stream.subarray(at, at + 4 + length));
                at += 4 + length;
              }
              const fate = predict(codec, parsed, fuzzCase.onewayMethods);
              frames += parsed.length;
              if (fate.close) expectedCloses[fate.close]++;
              if (kernel && fate.eitherReasonIfKernel) eitherReason++;
              // A refused length that starts an unframed Thrift message (a lying prefix shifted
              // the stream onto a message head) is counted as `unframed` on kernel transports.
              if (kernel && fate.refusedLength !== null && codec.unframed?.startsMessage(fate.refusedLength >>> 24)) unframedRefusals++;

              const socket = await FrameSocket.open(port);
              const got: number[] = [];
              socket.onFrame = (body) => {
                try {
                  const reply = wire.decode(body);
                  if (!reply.ok && !TYPED_ERRORS.has(reply.kind!)) failures.push(`conn ${index}: untyped or unexpected error ${reply.kind}: ${reply.message}`);
                  got.push(reply.id);
                } catch (error) {
                  failures.push(`conn ${index}: unreadable reply ${body.toString('hex').slice(0, 200)}: ${String(error)}`);
                }
              };
              for (let offset = 0; offset < stream.length; ) {
                const size = rng.int(1, rng.chance(0.5) ? 16 : 4096);
                socket.write(stream.subarray(offset, offset + size));
                offset += size;
                if (rng.chance(0.2)) await new Promise((resolve) => setImmediate(resolve));
              }
              if (!fate.close) socket.end();
              let timer: NodeJS.Timeout | undefined;
              const closedInTime = await Promise.race([
                socket.ended.then(() => true),
                new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), 10_000))),
              ]);
              clearTimeout(timer);
              // Replies written before the server's FIN have all been read by now.
              socket.destroy();
              replies += got.length;
              const hex = stream.toString('hex').slice(0, 400);
              if (!closedInTime) {
                failures.push(`conn ${index}: not ended by the server within 10 s (expected ${fate.close ?? 'a clean end'}); stream ${hex}`);
                socket.destroy();
              } else if (fate.close) {
                const allowed = kernel ? fate.repliesIfKernel : fate.repliesBeforeClose;
                if (!isSubMultiset(got, allowed)) {
                  failures.push(`conn ${index}: replies ${got} are not all for frames the server may have run (${allowed}); stream ${hex}`);
                }
              } else if (!matchesFate(got, fate.replies, fate.optional)) {
                failures.push(`conn ${index}: replies ${got.join(',')} but expected ${fate.replies.join(',')} (and maybe ${fate.optional.join(',')}); stream ${hex}`);
              }
            };

            const started = Date.now();
            let next = 0;
            await Promise.all(
              Array.from({ length: parallel }, async () => {
                while (next < connections && failures.length === 0) await oneConnection(next++);
              }),
            );
            const { ok, errors } = await good.stop();
            expect(failures.slice(0, 5)).toEqual([]);
            expect(errors.slice(0, 5)).toEqual([]);
            expect(ok).toBeGreaterThan(0);

            await until(() => server.stats().connections.open === 0, 'every connection to close');
            const stats = server.stats();
            expect(stats.requests.inFlight).toBe(0);
            const closes: Record<string, number> = Object.fromEntries(Object.entries(stats.connectionErrors).filter(([, n]) => n > 0));
            expect(closes.unframed ?? 0).toBeLessThanOrEqual(unframedRefusals);
            if (closes.unframed) {
              closes.frame_too_large = (closes.frame_too_large ?? 0) + closes.unframed;
              delete closes.unframed;
            }
            const predicted = Object.fromEntries(Object.entries(expectedCloses).filter(([, n]) => n > 0));
            if (eitherReason === 0) expect(closes).toEqual(predicted);
            else {
              // Every close still counted once, under one of the two reasons its stream allows.
              expect(Object.keys(closes).filter((reason) => !(reason in expectedCloses))).toEqual([]);
              expect((closes.protocol ?? 0) + (closes.frame_too_large ?? 0)).toBe(expectedCloses.protocol + expectedCloses.frame_too_large);
              expect(closes.protocol ?? 0).toBeGreaterThanOrEqual(expectedCloses.protocol - eitherReason);
              expect(closes.protocol ?? 0).toBeLessThanOrEqual(expectedCloses.protocol);
            }
            report('fuzz-server', {
              transport, wire: fuzzCase.wire, seed, connections, frames, replies, goodReplies: ok,
              closes: predicted, seconds: (Date.now() - started) / 1000,
            });
          } finally {
            await server.close({ timeoutMs: 0 });
          }
        },
        timeoutMs(60_000, 4 * 60 * 60_000),
      );
    }
  });
}
