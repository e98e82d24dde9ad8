// The handoff computed on the host, where the kernel has no kTLS: a real Node TLS peer
// over loopback TCP, the handshake on kmux's FdTransport, then the record layer
// emulated with the plan's keys and sequence numbers (emulated-ktls.ts). The peer only
// accepts our records, and we only decrypt its records, if the plan is exact.
import { once } from 'node:events';
import { connect as connectTls, createSecureContext, createServer as createTlsServer, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { FdTransport } from '../../src/tls/fd-transport.js';
import { clientHandshake, serverHandshake, type HandshakeOutcome } from '../../src/tls/handshake.js';
import { planHandoff } from '../../src/tls/ktls-plan.js';
import { takeSocketFd } from '../../src/tls/socket-fd.js';
import { EmulatedKtls } from './emulated-ktls.js';
import { collectUntil, pausedConnect, pausedListener, pin, removeDir, selfSignedCert, SUITES, suiteName } from './fixtures.js';

const { key, cert, dir } = selfSignedCert();
afterAll(() => removeDir(dir));

/** Leaves the TLS library behind without letting it write or close the fd. */
function release(outcome: HandshakeOutcome): number {
  const fd = outcome.transport.detach();
  outcome.socket.on('error', () => {});
  outcome.socket.destroy();
  return fd;
}

describe.each(SUITES)('handoff plan, $version $ciphers', (suite) => {
  it('server side: sequence numbers count the tickets, keys decrypt the client and the client decrypts us', async () => {
    const handshake = new Promise<HandshakeOutcome>((resolve, reject) => {
      void pausedListener((socket) => {
        const transport = new FdTransport(takeSocketFd(socket).fd);
        serverHandshake(transport, { secureContext: createSecureContext({ key, cert, ...pin(suite) }) }).then(resolve, reject);
      }).then(({ server, port }) => {
        listener = server;
        const client = connectTls({ port, host: '127.0.0.1', servername: 'localhost', ca: cert, ...pin(suite) });
        clientSocket = client;
        // Sent right behind the client's Finished: it must stay in the kernel, not in the TLS library.
        client.once('secureConnect', () => client.write('ping from the client'));
      });
    });
    let listener: import('node:net').Server | undefined;
    let clientSocket: TLSSocket | undefined;
    const outcome = await handshake;
    const plan = planHandoff(outcome);
    expect(plan.suite.cipher).toBe(suite.cipher);
    // TLS 1.3: OpenSSL's two NewSessionTickets went out under the server's application keys.
    expect(plan.txSeq).toBe(suite.version === 'TLSv1.3' ? 2n : 1n);
    expect(plan.rxSeq).toBe(suite.version === 'TLSv1.3' ? 0n : 1n);
    expect(plan.pendingPlaintext.length).toBe(0);

    const ktls = new EmulatedKtls(release(outcome), plan);
    expect((await ktls.readData(20)).toString()).toBe('ping from the client');
    const reply = collectUntil(clientSocket!, (all) => all.toString() === 'pong from kmux');
    ktls.send(23, Buffer.from('pong from kmux'));
    await reply;
    clientSocket!.write('second');
    expect((await ktls.readData(26)).toString()).toBe('ping from the clientsecond');
    ktls.close();
    clientSocket!.destroy();
    listener!.close();
  });

  it('client side: verifies the server, leaves its tickets in the kernel, and talks with the plan', async () => {
    const server = createTlsServer({ key, cert, ...pin(suite) }, (socket) => {
      socket.on('data', (d: Buffer) => socket.write(d.toString().toUpperCase()));
      socket.on('error', () => {});
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    const transport = new FdTransport(takeSocketFd(await pausedConnect(port)).fd);
    const outcome = await clientHandshake(transport, { host: '127.0.0.1', servername: 'localhost', ca: cert, ...pin(suite) });
    const plan = planHandoff(outcome);
    expect(plan.txSeq).toBe(suite.version === 'TLSv1.3' ? 0n : 1n);
    expect(plan.rxSeq).toBe(suite.version === 'TLSv1.3' ? 0n : 1n);

    const ktls = new EmulatedKtls(release(outcome), plan);
    ktls.send(23, Buffer.from('hello'));
    expect((await ktls.readData(5)).toString()).toBe('HELLO');
    if (suite.version === 'TLSv1.3') {
      // The server's NewSessionTickets arrive as handshake records (inner type 22), before the reply.
      expect(ktls.records.map((r) => r.type)).toEqual([22, 22, 23]);
      expect(ktls.records[0]!.plaintext[0]).toBe(4);
    }
    ktls.close();
    server.close();
  });
});

describe('client handshake', () => {
  it('rejects a server certificate it cannot verify, by default', async () => {
    const server = createTlsServer({ key, cert }, (socket) => socket.on('error', () => {}));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    const transport = new FdTransport(takeSocketFd(await pausedConnect(port)).fd);
    await expect(clientHandshake(transport, { host: '127.0.0.1', servername: 'localhost' })).rejects.toThrow(/self-signed|self signed/);
    expect(transport.destroyed).toBe(true);
    server.close();
  });
});

describe('keylog suites', () => {
  it('names every case uniquely', () => {
    expect(new Set(SUITES.map(suiteName)).size).toBe(SUITES.length);
  });
});
