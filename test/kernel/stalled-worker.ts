// One stalled worker under a streaming client, on a kernel transport (KCM in the VM, sockmap
// on the host): every request is a gated `wait` (packages/core/test/fixtures/handlers.mjs)
// with its own tag. The first worker thread to start one becomes the victim: the test holds
// its requests, and releases every other worker's at once, so only the victim is stalled.
import { expect } from 'vitest';
import type { Server } from '@kmux/core';
import { RawConnection, gateTag, parseReply, release, started, until } from '../../packages/core/test/helpers.js';

export interface StallResult {
  /** Requests the victim's handler started while stalled: what its budget let run. */
  readonly victimStarted: number;
  /** The most requests (running + held) the victim reported holding while stalled. */
  readonly victimHeldMax: number;
  /** Replies that came back while the victim was stalled. */
  readonly answeredDuringStall: number;
  /** Replies by kind once all is released: ok, overloaded, ... */
  readonly outcomes: Readonly<Record<string, number>>;
}

/**
 * Streams `count` gated requests on one connection and keeps the victim stalled until
 * `answeredBeforeRelease` replies came back from the others; then releases it and asserts
 * that each request is answered exactly once. The victim is first brought to `depth`: requests
 * go one at a time, each once the last one started, until the victim holds `depth`; only then
 * the rest. Which worker a frame reaches is the kernel's choice (sockmap deals them round
 * robin; KCM gives each to a ready socket, which may be the other worker's hundreds of times
 * running), so a stream sent at once may be answered by the other worker before the victim
 * reached its bound, and the bound would go untested.
 */
export async function stallOneWorker(server: Server, port: number, count: number, answeredBeforeRelease: number, depth: number): Promise<StallResult> {
  const conn = await RawConnection.open(port);
  const tags = Array.from({ length: count }, () => gateTag('stall'));
  let victim: number | undefined;
  let releasing = false;
  const held: string[] = [];
  let startedCount = 0;
  for (const tag of tags) {
    void started(tag).then((threadId) => {
      startedCount++;
      victim ??= threadId;
      if (threadId !== victim || releasing) release(tag);
      else held.push(tag);
    });
  }
  try {
    const send = (from: number, to: number): void => {
      for (let i = from; i < to; i++) conn.request(i, 'wait', tags[i]!);
    };
    let sent = 0;
    while (held.length < depth && sent < count) {
      send(sent, ++sent);
      await until(() => startedCount === sent, `request ${sent - 1} to start (the victim holds ${held.length} of ${depth})`);
    }
    send(sent, count);
    const victimSlot = () => server.stats().workers.find((w) => w.threadId === victim)?.slot;
    let victimHeldMax = 0;
    // The stall: the other workers answer what reaches them, the victim only takes what its bound allows.
    await until(() => {
      const slot = victimSlot();
      if (slot !== undefined) victimHeldMax = Math.max(victimHeldMax, server.stats().workers[slot]!.inFlight);
      return conn.replies.length >= answeredBeforeRelease;
    }, `${answeredBeforeRelease} replies from the other workers while one is stalled`, 90_000);
    const answeredDuringStall = conn.replies.length;
    const victimStarted = held.length;
    releasing = true;
    for (const tag of held.splice(0)) release(tag);
    await conn.waitReplies(count);
    const ids = conn.replies.map((reply) => parseReply(reply).id).sort((a, b) => a - b);
    expect(ids, 'every request answered exactly once').toEqual(tags.map((_, i) => i));
    const outcomes: Record<string, number> = {};
    for (const reply of conn.replies) {
      const { error } = parseReply(reply);
      const kind = error ? error.kind : 'ok';
      outcomes[kind] = (outcomes[kind] ?? 0) + 1;
    }
    return { victimStarted, victimHeldMax, answeredDuringStall, outcomes };
  } finally {
    releasing = true;
    for (const tag of held.splice(0)) release(tag);
    conn.socket.destroy();
  }
}
