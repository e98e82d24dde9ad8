// Key material after a handoff that works, on a real kernel: once TLS_TX and TLS_RX are set,
// the key, iv and salt Buffers the plan handed over are all zeroes, the TLS 1.3 traffic
// secrets kept for a KeyUpdate are zeroed by wipe(), and the connection still works, so
// the kernel got the keys before kmux forgot them. Across a KeyUpdate, the secret it replaced
// is zero at once and the next one at close (Linux ≥ 6.14); where the kernel refuses the next
// key (EBUSY), both are zero. (The failing call's wipe is tested on the host:
// packages/core/test/tls/key-wipe.test.ts and key-update.test.ts.)
import { once } from 'node:events';
import { connect as connectTls, createSecureContext, type TLSSocket } from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import { nativeKtls } from '../../packages/native/src/index.js';
import { FdTransport } from '../../packages/core/src/tls/fd-transport.js';
import { serverHandshake, type HandshakeOutcome } from '../../packages/core/src/tls/handshake.js';
import { KeyUpdater } from '../../packages/core/src/tls/key-update.js';
import { ktlsSupport } from '../../packages/core/src/tls/kernel-support.js';
import { planHandoff, type KtlsPlan } from '../../packages/core/src/tls/ktls-plan.js';
import { KtlsSocket } from '../../packages/core/src/tls/ktls-socket.js';
import { takeSocketFd } from '../../packages/core/src/tls/socket-fd.js';
import { collectUntil, pausedListener, pin, removeDir, selfSignedCert, SUITES, type SuiteCase } from '../../packages/core/test/tls/fixtures.js';

const series = process.env.KMUX_KERNEL_SERIES;
const { key, cert, dir } = selfSignedCert();
afterAll(() => removeDir(dir));

const zeroed = (b: Uint8Array): boolean => b.length === 0 || b.every((x) => x === 0);

/** A Node TLS client and the server end of its handshake, not handed off yet. */
async function handshake(suite: SuiteCase): Promise<{ client: TLSSocket; outcome: HandshakeOutcome; close(): void }> {
  let resolveOutcome!: (o: Promise<HandshakeOutcome>) => void;
  const accepted = new Promise<Promise<HandshakeOutcome>>((resolve) => (resolveOutcome = resolve));
  const { server, port } = await pausedListener((socket) => {
    const transport = new FdTransport(takeSocketFd(socket).fd);
    resolveOutcome(serverHandshake(transport, { secureContext: createSecureContext({ key, cert, ...pin(suite) }) }));
  });
  const client = connectTls({ port, host: '127.0.0.1', servername: 'localhost', ca: cert, ...pin(suite) });
  await once(client, 'secureConnect');
  return { client, outcome: await (await accepted), close: () => server.close() };
}

/** TLS_TX, the fd detached from the handshake's transport, TLS_RX: the handoff, by hand. Returns the fd. */
function installKeys(outcome: HandshakeOutcome, plan: KtlsPlan): number {
  const native = nativeKtls();
  native.enableKtls(outcome.transport.fd, plan.tx);
  const fd = outcome.transport.detach();
  outcome.socket.on('error', () => {});
  outcome.socket.destroy();
  native.enableKtls(fd, plan.rx);
  return fd;
}

describe.each([SUITES[0]!, SUITES[2]!, SUITES[4]!])(`kernel ${series}: key material after the handoff, $version $ciphers`, (suite) => {
  it('is zeroed once the kernel has it, and the kernel has the right keys', async () => {
    const { client, outcome, close } = await handshake(suite);

    const plan = planHandoff(outcome, { keepTrafficSecrets: true });
    const handed = [plan.tx.key, plan.tx.iv, plan.tx.salt, plan.rx.key, plan.rx.iv, plan.rx.salt];
    expect(handed.some((b) => !zeroed(b))).toBe(true);
    const fd = installKeys(outcome, plan);
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
    close();
  });
});

describe.each([SUITES[0]!, SUITES[2]!])(`kernel ${series}: traffic secrets across a KeyUpdate, $version $ciphers`, (suite) => {
  const title = ktlsSupport().rekey
    ? 'the replaced secret is zeroed at once, the next one at close, and the new keys work'
    : 'the kernel refuses the next key (EBUSY), and the old and the next secret are both zeroed';
  it(title, async () => {
    const { client, outcome, close } = await handshake(suite);
    const plan = planHandoff(outcome, { keepTrafficSecrets: true });
    const fd = installKeys(outcome, plan);
    const { tx, rx } = plan.trafficSecrets!;
    const updater = new KeyUpdater(fd, plan.suite, tx, rx);
    // White-box: the secret the KeyUpdater holds now.
    const current = (): { tx: Buffer; rx: Buffer } => updater as unknown as { tx: Buffer; rx: Buffer };
    const socket = new KtlsSocket({ fd, suite: plan.suite, keyUpdater: updater });
    const closed = new Promise<Error | null>((resolve) => {
      let error: Error | null = null;
      socket.on('error', (e: Error) => (error = e));
      socket.once('close', () => resolve(error));
    });
    const updates: string[] = [];
    socket.on('keyUpdate', (direction: string) => updates.push(direction));
    // Ours asks Node's OpenSSL for one back: both directions get a new key.
    socket.keyUpdate(true);
    if (!ktlsSupport().rekey) {
      expect(await closed).toMatchObject({ reason: 'key_update', cause: { code: 'EBUSY', syscall: 'setsockopt(SOL_TLS, TLS_TX)' } });
      expect([zeroed(tx), zeroed(rx), zeroed(current().tx), zeroed(current().rx)]).toEqual([true, true, true, true]);
      client.destroy();
      close();
      return;
    }
    const roundTrip = async (ping: string, pong: string): Promise<void> => {
      const request = collectUntil(socket, (all) => all.toString() === ping);
      client.write(ping);
      await request;
      const reply = collectUntil(client, (all) => all.toString() === pong);
      socket.write(pong);
      await reply;
    };
    await roundTrip('ping', 'pong');
    // Node's OpenSSL answers our request before its next write: then the receive key is new too.
    await roundTrip('ping again', 'pong again');
    expect(updates).toEqual(['tx', 'rx']);
    expect([zeroed(tx), zeroed(rx)]).toEqual([true, true]);
    const next = { ...current() };
    expect([zeroed(next.tx), zeroed(next.rx)]).toEqual([false, false]);
    socket.destroy();
    await closed;
    expect([zeroed(next.tx), zeroed(next.rx)]).toEqual([true, true]);
    client.destroy();
    close();
  });
});
