// Key material after a handoff that works, on a real kernel: once TLS_TX and TLS_RX are set,
// the key, iv and salt Buffers the plan handed over are all zeroes, the TLS 1.3 traffic
// secrets kept for a KeyUpdate are zeroed by wipe(), and the connection still works, so
// the kernel got the keys before kmux forgot them. (The failing call's wipe is tested on
// the host: packages/core/test/tls/key-wipe.test.ts.)
import { once } from 'node:events';
import { connect as connectTls, createSecureContext } from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import { nativeKtls } from '../../packages/native/src/index.js';
import { FdTransport } from '../../packages/core/src/tls/fd-transport.js';
import { serverHandshake, type HandshakeOutcome } from '../../packages/core/src/tls/handshake.js';
import { planHandoff } from '../../packages/core/src/tls/ktls-plan.js';
import { KtlsSocket } from '../../packages/core/src/tls/ktls-socket.js';
import { takeSocketFd } from '../../packages/core/src/tls/socket-fd.js';
import { collectUntil, pausedListener, pin, removeDir, selfSignedCert, SUITES } from '../../packages/core/test/tls/fixtures.js';

const series = process.env.KMUX_KERNEL_SERIES;
const { key, cert, dir } = selfSignedCert();
afterAll(() => removeDir(dir));

const zeroed = (b: Uint8Array): boolean => b.length === 0 || b.every((x) => x === 0);

describe.each([SUITES[0]!, SUITES[2]!, SUITES[4]!])(`kernel ${series}: key material after the handoff, $version $ciphers`, (suite) => {
  it('is zeroed once the kernel has it, and the kernel has the right keys', async () => {
    let resolveOutcome!: (o: Promise<HandshakeOutcome>) => void;
    const accepted = new Promise<Promise<HandshakeOutcome>>((resolve) => (resolveOutcome = resolve));
    const { server, port } = await pausedListener((socket) => {
      const transport = new FdTransport(takeSocketFd(socket).fd);
      resolveOutcome(serverHandshake(transport, { secureContext: createSecureContext({ key, cert, ...pin(suite) }) }));
    });
    const client = connectTls({ port, host: '127.0.0.1', servername: 'localhost', ca: cert, ...pin(suite) });
    await once(client, 'secureConnect');
    const outcome = await (await accepted);

    const plan = planHandoff(outcome, { keepTrafficSecrets: true });
    const handed = [plan.tx.key, plan.tx.iv, plan.tx.salt, plan.rx.key, plan.rx.iv, plan.rx.salt];
    expect(handed.some((b) => !zeroed(b))).toBe(true);
    const native = nativeKtls();
    native.enableKtls(outcome.transport.fd, plan.tx);
    const fd = outcome.transport.detach();
    outcome.socket.on('error', () => {});
    outcome.socket.destroy();
    native.enableKtls(fd, plan.rx);
    expect(handed.map(zeroed)).toEqual(handed.map(() => true));

    const secrets = plan.trafficSecrets;
    if (suite.version === 'TLSv1.3') {
      expect([zeroed(secrets!.tx), zeroed(secrets!.rx)]).toEqual([false, false]);
    } else {
      expect(secrets).toBeNull();
    }
    plan.wipe();
    if (secrets) expect([zeroed(secrets.tx), zeroed(secrets.rx)]).toEqual([true, true]);

    const socket = new KtlsSocket({ fd, suite: plan.suite });
    socket.on('error', () => {});
    const request = collectUntil(socket, (all) => all.toString() === 'ping');
    client.write('ping');
    await request;
    const reply = collectUntil(client, (all) => all.toString() === 'pong');
    socket.write('pong');
    await reply;
    socket.destroy();
    client.destroy();
    server.close();
  });
});
