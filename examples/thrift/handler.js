'use strict';
// The Catalog service implementation that kmux loads in every worker thread. It mixes the
// handler styles kmux accepts: promise-returning (lookup, sleep), node-callback
// (hashRounds) and plain synchronous return values (echo, blockFor, recordView).
const { createHash } = require('node:crypto');
const { setTimeout: delay } = require('node:timers/promises');
const { Item, ItemNotFound, InvalidArgument } = require('./gen-nodejs/catalog_types');

/** Upper bound on hashRounds work, so one request cannot pin a worker for minutes. */
const MAX_ROUNDS = 10_000_000;
/** Upper bound on sleep and blockFor, for the same reason. */
const MAX_SLEEP_MS = 60_000;
/** What blockFor waits on: nothing ever notifies it, so each wait runs to its timeout. */
const neverNotified = new Int32Array(new SharedArrayBuffer(4));

const ITEMS = new Map(
  [
    { sku: 'kb-001', title: 'Mechanical keyboard', priceCents: 8900, tags: ['input', 'usb'] },
    { sku: 'ms-002', title: 'Wireless mouse', priceCents: 2900, tags: ['input', 'bluetooth'] },
    { sku: 'mn-003', title: '27" monitor', priceCents: 24900, tags: ['display'] },
  ].map((item) => [item.sku, item]),
);

/** A tiny deterministic "image" per sku, standing in for a stored thumbnail. */
function thumbnailOf(sku) {
  return createHash('sha256').update(`thumbnail:${sku}`).digest();
}

/** Views recorded by the oneway recordView, per worker thread (workers share nothing). */
const views = new Map();

module.exports = {
  async lookup(query) {
    const found = ITEMS.get(query.sku);
    if (!found) throw new ItemNotFound({ sku: query.sku, message: `no item with sku ${query.sku}` });
    return new Item({ ...found, thumbnail: query.withThumbnail ? thumbnailOf(found.sku) : undefined });
  },

  hashRounds(data, rounds, callback) {
    if (!Number.isInteger(rounds) || rounds < 1 || rounds > MAX_ROUNDS) {
      callback(new InvalidArgument({ message: `rounds must be 1..${MAX_ROUNDS}, got ${rounds}` }));
      return;
    }
    let digest = data;
    for (let i = 0; i < rounds; i++) digest = createHash('sha256').update(digest).update(data).digest();
    callback(null, digest);
  },

  echo(data) {
    return data;
  },

  async sleep(ms) {
    const bounded = Math.max(0, Math.min(ms, MAX_SLEEP_MS));
    await delay(bounded);
    return bounded;
  },

  blockFor(micros) {
    const bounded = Math.max(0, Math.min(micros, MAX_SLEEP_MS * 1000));
    Atomics.wait(neverNotified, 0, 0, bounded / 1000);
    return bounded;
  },

  recordView(sku) {
    views.set(sku, (views.get(sku) ?? 0) + 1);
  },
};
