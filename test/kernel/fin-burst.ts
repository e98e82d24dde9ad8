// Requests sent together with the FIN: each client writes its requests and half-closes in one
// go, then reads replies until the server closes. On a kernel transport the hangup notice can
// overtake the kernel's parsing and delivery of those last frames to a worker's socket; the
// server must answer every one anyway. Used by the sockmap test on the host
// (test/sockmap/sockmap-fin.test.ts) and the KCM one in the VM (test/kernel/kcm-fin.test.ts).
import { connect, type Socket } from 'node:net';
import { FrameSplitter, encodeFrame, encodeRawRequest } from '@kmux/core';

export interface FinBurstResult {
  readonly connections: number;
  /** Clients that got fewer replies than requests they sent, with what they got. */
  readonly short: readonly { readonly client: number; readonly replies: number; readonly reset: boolean }[];
}

const request = (id: number): Buffer => encodeFrame(encodeRawRequest(id, 'echo', Buffer.from(`fin ${id}`)));

/**
 * One client: with `roundTripFirst`, one request answered before the burst (so the server
 * has the connection under kernel framing when the FIN comes); then `requests` frames and
 * the FIN in one write. Resolves how many replies arrived before the server closed.
 */
function client(port: number, requests: number, roundTripFirst: boolean): Promise<{ replies: number; reset: boolean }> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    const splitter = new FrameSplitter(1 << 20);
    let replies = 0;
    let reset = false;
    const burst = (): void => {
      socket.end(Buffer.concat(Array.from({ length: requests }, (_, i) => request(i + 1))));
    };
    socket.on('data', (chunk: Buffer) =>
      splitter.push(chunk, () => {
        replies++;
        if (roundTripFirst && replies === 1) burst();
      }),
    );
    socket.once('connect', () => (roundTripFirst ? socket.write(request(0)) : burst()));
    socket.once('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNRESET' ? (reset = true) : reject(error)));
    socket.once('close', () => resolve({ replies: roundTripFirst ? replies - 1 : replies, reset }));
  });
}

/** `rounds` rounds of `clients` clients at once, each sending `requests` requests with its FIN. */
export async function finBursts(port: number, rounds: number, clients: number, requests: number, roundTripFirst: boolean): Promise<FinBurstResult> {
  const short: { client: number; replies: number; reset: boolean }[] = [];
  for (let round = 0; round < rounds; round++) {
    const got = await Promise.all(Array.from({ length: clients }, () => client(port, requests, roundTripFirst)));
    got.forEach(({ replies, reset }, i) => {
      if (replies !== requests) short.push({ client: round * clients + i, replies, reset });
    });
  }
  return { connections: rounds * clients, short };
}
