// Requests sent together with the FIN: each client writes its requests and half-closes in one
// go, then reads replies until the server closes. On a kernel transport the hangup notice can
// overtake the kernel's parsing and delivery of those last frames to a worker's socket; the
// server must answer every one anyway. Used by the sockmap test on the host
// (test/sockmap/sockmap-fin.test.ts) and the KCM one in the VM (test/kernel/kcm-fin.test.ts).
import { connect, type Socket } from 'node:net';
import { FrameSplitter, decodeRawReply, encodeFrame, encodeRawRequest } from '@kmux/core';

export interface FinBurstResult {
  readonly connections: number;
  /** Clients that got fewer replies than requests they sent, with what they got. */
  readonly short: readonly { readonly client: number; readonly replies: number; readonly reset: boolean }[];
  /** Replies that were not the echo of a request outstanding on their connection (a garbled or repeated reply). */
  readonly wrong: number;
}

const payload = (id: number): string => `fin ${id}`;
const request = (id: number): Buffer => encodeFrame(encodeRawRequest(id, 'echo', Buffer.from(payload(id))));

/**
 * One client: with `roundTripFirst`, one request answered before the burst (so the server
 * has the connection under kernel framing when the FIN comes); then `requests` frames and
 * the FIN in one write. Resolves how many right replies arrived before the server closed, and how many wrong ones.
 */
function client(port: number, requests: number, roundTripFirst: boolean): Promise<{ replies: number; wrong: number; reset: boolean }> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    const splitter = new FrameSplitter(1 << 20);
    const outstanding = new Set(Array.from({ length: requests + 1 }, (_, id) => id));
    if (!roundTripFirst) outstanding.delete(0);
    let replies = 0;
    let wrong = 0;
    let reset = false;
    const burst = (): void => {
      socket.end(Buffer.concat(Array.from({ length: requests }, (_, i) => request(i + 1))));
    };
    socket.on('data', (chunk: Buffer) =>
      splitter.push(chunk, (body) => {
        const id = body.length >= 4 ? body.readUInt32BE(0) : -1;
        let echoed = '';
        try {
          echoed = decodeRawReply(body).toString();
        } catch {}
        if (!outstanding.delete(id) || echoed !== payload(id)) return void wrong++;
        replies++;
        if (roundTripFirst && id === 0) burst();
      }),
    );
    socket.once('connect', () => (roundTripFirst ? socket.write(request(0)) : burst()));
    socket.once('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNRESET' ? (reset = true) : reject(error)));
    socket.once('close', () => resolve({ replies: roundTripFirst ? replies - 1 : replies, wrong, reset }));
  });
}

/** `rounds` rounds of `clients` clients at once, each sending `requests` requests with its FIN. */
export async function finBursts(port: number, rounds: number, clients: number, requests: number, roundTripFirst: boolean): Promise<FinBurstResult> {
  const short: { client: number; replies: number; reset: boolean }[] = [];
  let wrong = 0;
  for (let round = 0; round < rounds; round++) {
    const got = await Promise.all(Array.from({ length: clients }, () => client(port, requests, roundTripFirst)));
    got.forEach((result, i) => {
      wrong += result.wrong;
      if (result.replies !== requests) short.push({ client: round * clients + i, replies: result.replies, reset: result.reset });
    });
  }
  return { connections: rounds * clients, short, wrong };
}
