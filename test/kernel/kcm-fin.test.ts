// KCM never loses a request sent with the FIN: the workers read until they got as many
// messages as the BPF parser counted (native/frame_tally.h), whichever KCM socket each landed
// on. The sockmap twin runs on the host: test/sockmap/sockmap-fin.test.ts.
//
// Nor a reply: KCM's state-change hook sets EPIPE on the TCP socket at the FIN, and a reply
// send that meets it stops the mux's transmit for good, leaving replies queued on the KCM
// sockets; kmux then gives the connection a fresh transmit (`stats().kernel.transmitRestarts`).
// Before it did, 40-odd of these 160 clients were cut off on each kernel.
// The requests pass on KCM even without the counted finish (KCM queues a parsed message on a
// KCM socket synchronously); that race needs the parser to resume from its workqueue after the
// FIN notice (a KCM socket full), which the host's sockmap twin exercises every time.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Server, rawCodec } from '@kmux/core';
import { HANDLERS, until } from '../../packages/core/test/helpers.js';
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
});
