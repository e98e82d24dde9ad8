/**
 * A well-behaved client that keeps calling while a test attacks the server some other
 * way: a few requests outstanding at a time, each answer checked against its id. Its
 * result says how many answers were right and lists anything that went wrong.
 */
import { encodeFrame } from '@kmux/core';
import { until } from './harness.js';
import { FrameSocket, type Wire } from './wire.js';

export interface GoodClientResult {
  readonly ok: number;
  readonly errors: string[];
  readonly latenciesMs: number[];
}

export interface GoodClient {
  /** Resolves once `count` more answers have come back right (or an error happened). */
  progress(count: number, timeoutMs?: number): Promise<void>;
  stop(): Promise<GoodClientResult>;
}

export async function startGoodClient(wire: Wire, port: number, window = 4): Promise<GoodClient> {
  const socket = await FrameSocket.open(port);
  const expected = new Map<number, { payload: Buffer; sentAt: number }>();
  const latenciesMs: number[] = [];
  const errors: string[] = [];
  let ok = 0;
  let nextId = 1;
  let stopped = false;
  let wake: (() => void) | null = null;

  socket.onFrame = (body) => {
    try {
      const reply = wire.decode(body);
      const request = expected.get(reply.id);
      if (!request) errors.push(`reply for unknown id ${reply.id}`);
      else if (!reply.ok) errors.push(`id ${reply.id}: ${reply.kind} ${reply.message}`);
      else if (!reply.payload!.equals(wire.answerFor(request.payload))) errors.push(`id ${reply.id}: wrong answer`);
      else {
        ok++;
        latenciesMs.push(performance.now() - request.sentAt);
      }
      expected.delete(reply.id);
    } catch (error) {
      errors.push(`unreadable reply: ${String(error)}`);
    }
    const w = wake;
    wake = null;
    w?.();
  };
  void socket.ended.then(() => wake?.());

  const loop = (async () => {
    while (!stopped && !socket.serverEnded && errors.length === 0) {
      const frames: Buffer[] = [];
      while (expected.size < window) {
        const id = nextId++;
        const payload = Buffer.from(`good ${id}`);
        expected.set(id, { payload, sentAt: performance.now() });
        frames.push(encodeFrame(wire.work(id, payload)));
      }
      if (frames.length) socket.write(Buffer.concat(frames));
      await new Promise<void>((resolve) => (wake = resolve));
    }
  })();

  return {
    async progress(count, timeoutMs = 10_000) {
      const target = ok + count;
      await until(() => ok >= target || errors.length > 0 || socket.serverEnded, `${count} more good answers`, timeoutMs);
    },
    async stop() {
      stopped = true;
      await loop;
      await until(() => expected.size === 0 || socket.serverEnded || errors.length > 0, 'the good client to get its last answers', 10_000);
      if (socket.serverEnded) errors.push('the server closed the good connection');
      socket.destroy();
      return { ok, errors, latenciesMs };
    },
  };
}
