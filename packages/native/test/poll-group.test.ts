// PollGroup: MessageWatchers that read through one epoll set, paused and resumed together
// (a worker's budget on KCM, scheduler/kernel-budget.ts). Over real loopback TCP: the server
// ends are watched as stream sockets, which read the same way as KCM sockets.
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { MessageWatcher, PollGroup } from '../src/index.js';
import { openFds, tcpPair, until, type TcpPair } from './frames.js';

const frame = (text: string): Buffer => {
  const body = Buffer.from(text);
  const header = Buffer.alloc(4);
  header.writeUInt32BE(body.length);
  return Buffer.concat([header, body]);
};

/** Loop turns enough for anything readable to have been read. */
const turns = async (n = 20): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setTimeout(resolve, 1));
};

interface Member {
  readonly pair: TcpPair;
  readonly watcher: MessageWatcher;
  readonly got: string[];
}

const pairs: TcpPair[] = [];
const watchers: MessageWatcher[] = [];
afterEach(() => {
  for (const watcher of watchers.splice(0)) watcher.close();
  for (const pair of pairs.splice(0)) pair.close();
});

async function member(group: PollGroup): Promise<Member> {
  const pair = await tcpPair();
  pairs.push(pair);
  const got: string[] = [];
  const watcher = new MessageWatcher(pair.serverFd, {
    maxFrameBytes: 1024,
    group,
    onMessages(data, offsets) {
      for (let i = 0; i + 1 < offsets.length; i++) got.push(data.subarray(offsets[i]! + 4, offsets[i + 1]).toString());
    },
    onClose() {},
  });
  watchers.push(watcher);
  return { pair, watcher, got };
}

describe('PollGroup', () => {
  it('reads every member; paused, reads none of them, and after resume() what came meanwhile', async () => {
    const group = new PollGroup();
    const members = await Promise.all([member(group), member(group), member(group)]);
    members.forEach((m, i) => m.pair.client.write(frame(`a${i}`)));
    await until(() => members.every((m) => m.got.length === 1), 'the first frames');

    group.pause();
    members.forEach((m, i) => m.pair.client.write(Buffer.concat([frame(`b${i}`), frame(`c${i}`)])));
    await turns();
    expect(members.map((m) => m.got.length)).toEqual([1, 1, 1]);

    group.resume();
    await until(() => members.every((m) => m.got.length === 3), 'the frames sent while paused');
    expect(members.map((m) => m.got)).toEqual([0, 1, 2].map((i) => [`a${i}`, `b${i}`, `c${i}`]));
    group.close();
  });

  it("a member's own resume() takes it out of the group: it reads while the group is paused", async () => {
    const group = new PollGroup();
    const [alone, grouped] = await Promise.all([member(group), member(group)]);
    group.pause();
    alone!.watcher.resume();
    alone!.pair.client.write(frame('alone'));
    grouped!.pair.client.write(frame('grouped'));
    await until(() => alone!.got.length === 1, 'the member that left');
    await turns();
    expect(grouped!.got).toEqual([]);
    // Paused on its own now, whatever the group does.
    alone!.watcher.pause();
    group.resume();
    alone!.pair.client.write(frame('later'));
    await until(() => grouped!.got.length === 1, 'the grouped member after resume()');
    await turns();
    expect(alone!.got).toEqual(['alone']);
    group.close();
  });

  it('a closed member is read no more, and the others go on', async () => {
    const group = new PollGroup();
    const [gone, kept] = await Promise.all([member(group), member(group)]);
    gone!.watcher.close();
    gone!.pair.client.write(frame('unread'));
    kept!.pair.client.write(frame('read'));
    await until(() => kept!.got.length === 1, 'the kept member');
    await turns();
    expect(gone!.got).toEqual([]);
    group.close();
  });

  it('reports a peer close to its member, as a watcher on its own does', async () => {
    const group = new PollGroup();
    const pair = await tcpPair();
    pairs.push(pair);
    let closed: string | null = null;
    const watcher = new MessageWatcher(pair.serverFd, {
      maxFrameBytes: 1024,
      group,
      onMessages() {},
      onClose: (error) => (closed = error?.code ?? 'EOF'),
    });
    watchers.push(watcher);
    pair.client.resetAndDestroy();
    await until(() => closed !== null, 'the close');
    expect(closed).toBe('ECONNRESET');
    group.close();
  });

  it('leaves no epoll fd behind: closed, or with its worker thread gone', async () => {
    const before = openFds();
    for (let i = 0; i < 50; i++) new PollGroup().close();
    expect(openFds()).toBe(before);
    const exited = Array.from({ length: 4 }, () => {
      const worker = new Worker(
        `const { PollGroup } = require(${JSON.stringify(fileURLToPath(new URL('../dist/index.js', import.meta.url)))}); globalThis.kept = new PollGroup();`,
        { eval: true },
      );
      return new Promise((resolve) => worker.once('exit', resolve));
    });
    await Promise.all(exited);
    expect(openFds()).toBe(before);
  });
});
