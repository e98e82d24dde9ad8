// KCM never loses a request sent with the FIN: the workers read until they got as many
// messages as the BPF parser counted (native/frame_tally.h), whichever KCM socket each landed
// on. The sockmap twin runs on the host: test/sockmap/sockmap-fin.test.ts.
//
// Nor a reply: KCM's state-change hook sets EPIPE on the TCP socket at the FIN, and a reply
// send that meets it stops the mux's transmit for good, leaving replies queued on the KCM
// sockets; kmux then gives the connection a fresh transmit (`stats().kernel.transmitRestarts`).
// Before it did, 40-odd of these 160 clients were cut off on each kernel.
// A peer that resets after its FIN, with replies still owed, leaves a transmit that cannot be
// restarted (attach refuses a closed socket): kmux gives up at once, counted, logged once.
//
// The requests pass on KCM even without the counted finish (KCM queues a parsed message on a
// KCM socket synchronously); that race needs the parser to resume from its workqueue after the
// FIN notice (a KCM socket full), which the host's sockmap twin exercises every time.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Server, rawCodec } from '@kmux/core';
import { HANDLERS, RawConnection, gateTag, release, started, until } from '../../packages/core/test/helpers.js';
import { finBursts, type FinBurstResult } from './fin-burst.js';

const series = process.env.KMUX_KERNEL_SERIES;
const ROUNDS = 10;
const CLIENTS = 16;
const REQUESTS = 16;
const warnings: string[] = [];
const logger = { info() {}, warn: (line: string) => void warnings.push(line), error: (line: string) => void warnings.push(line) };

describe(`kernel ${series}: KCM transport, requests sent with the FIN`, () => {
  let server: Server;
  let port: number;
  beforeAll(async () => {
    server = new Server({ codec: rawCodec({ handler: HANDLERS }), workers: 2, transport: 'kcm', logger });
    ({ port } = await server.listen());
  });
  afterAll(() => server.close({ timeoutMs: 1000 }));

  /** Runs the bursts; checks that the workers answered every request, and what reached the clients. */
  async function check(roundTripFirst: boolean, what: string): Promise<void> {
    const before = server.stats();
    const warned = warnings.length;
    const errorsBefore = before.connectionErrors.replies_unsent ?? 0;
    const result: FinBurstResult = await finBursts(port, ROUNDS, CLIENTS, REQUESTS, roundTripFirst);
    const expected = before.requests.received + result.connections * (REQUESTS + (roundTripFirst ? 1 : 0));
    // Workers post their counts before each detach: all are in once every connection is closed.
    await until(() => server.stats().connections.open === 0, 'connections released', 30_000);
    const after = server.stats();
    const unsent = (after.connectionErrors.replies_unsent ?? 0) - errorsBefore;
    const restarts = (after.kernel?.transmitRestarts ?? 0) - (before.kernel?.transmitRestarts ?? 0);
    console.log(
      `### ${series} KCM ${what}: ${result.connections} connections, requests ${after.requests.received - before.requests.received}, ` +
        `transmits restarted ${restarts}, clients short of replies ${result.short.length}, wrong replies ${result.wrong}, replies_unsent ${unsent}, warnings ${JSON.stringify(warnings.slice(warned, warned + 3))}`,
    );
    expect(after.requests.received).toBe(expected);
    expect(after.requests.outcomes.ok).toBe(expected);
    expect(result.short).toEqual([]);
    expect(result.wrong).toBe(0);
    expect(unsent).toBe(0);
    // A FIN whose EPIPE KCM's transmit took first once closed its connection as an error
    // ("uv_poll: EBADF"), cutting its replies short: every close here is a peer's FIN.
    expect(warnings.slice(warned)).toEqual([]);
  }

  it(`reads and answers every one of ${REQUESTS} requests written with the FIN after a round trip`, { timeout: 120_000 }, () =>
    check(true, 'FIN bursts'));

  it('reads and answers them when the FIN may come before the accept (KCM attaches a half-closed socket)', { timeout: 120_000 }, () =>
    check(false, 'FIN-only bursts'));

  it('gives up at once on replies a reset peer can no longer get after its FIN: counted, logged once', { timeout: 60_000 }, async () => {
    const before = server.stats();
    const warned = warnings.length;
    const peer = await RawConnection.open(port, { allowHalfOpen: true });
    peer.request(1, 'echo', 'under KCM');
    await until(() => peer.replies.length === 1, 'the first reply');
    const tag = gateTag('reset-after-fin');
    peer.request(2, 'wait', tag);
    for (let id = 3; id < 10; id++) peer.request(id, 'echo', `owed ${id}`);
    peer.socket.end();
    await started(tag);
    // The FIN reached the server's socket; a few loop turns later its hangup watch has told kmux.
    await until(() => serverSocketStates(port).includes(CLOSE_WAIT), 'the FIN at the server');
    await new Promise((resolve) => setTimeout(resolve, 100));
    peer.socket.resetAndDestroy();
    await until(() => !serverSocketStates(port).includes(CLOSE_WAIT), 'the RST at the server');
    release(tag);
    await until(() => server.stats().connections.open === 0, 'the connection released', 10_000);
    const after = server.stats();
    const lines = warnings.slice(warned);
    console.log(`### ${series} KCM reset after FIN: warnings ${JSON.stringify(lines)}`);
    expect((after.kernel?.failedTransmitRestarts ?? 0) - (before.kernel?.failedTransmitRestarts ?? 0)).toBe(1);
    expect((after.connectionErrors.replies_unsent ?? 0) - (before.connectionErrors.replies_unsent ?? 0)).toBe(1);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/closed: .*reply bytes unsent, the transmit could not be restarted: .*EOPNOTSUPP/);
  });
});

const CLOSE_WAIT = '08';

/** The TCP states (/proc/net/tcp's hex codes) of the server's accepted sockets on `port`. */
function serverSocketStates(port: number): string[] {
  const local = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => fields[1]?.endsWith(local) && fields[3] !== '0A') // 0A: the listener
    .map((fields) => fields[3]!);
}

