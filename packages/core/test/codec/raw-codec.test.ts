import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { rawCodec } from '@kmux/core';
import { cleanup, rejection, startServer } from '../helpers.js';

const fixture = (name: string): string => fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url));

describe('raw codec handler modules', () => {
  afterAll(cleanup);

  it('calls a default-export handler for every method, with the method name', async () => {
    const { client } = await startServer({ workers: 1, codec: rawCodec({ handler: fixture('default-handler.mjs') }) });
    expect((await client.call('anything', 'x')).toString()).toBe('anything(x)');
    expect((await client.call('other', '')).toString()).toBe('other()');
  });

  it('loads a CommonJS module exporting an object of methods', async () => {
    const { client } = await startServer({ workers: 1, codec: rawCodec({ handler: fixture('cjs-handler.cjs') }) });
    expect((await client.call('shout', 'hey')).toString()).toBe('HEY');
    expect((await client.call('whisper', 'HEY')).toString()).toBe('hey');
    expect((await rejection(client.call('hasOwnProperty', ''))).kind).toBe('unknown_method');
  });
});
