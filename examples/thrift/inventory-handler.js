'use strict';
// The Inventory service implementation (inventory.thrift), served beside Catalog.
const { setTimeout: delay } = require('node:timers/promises');

const STOCK = new Map([
  ['kb-001', 12],
  ['ms-002', 40],
  ['mn-003', 3],
]);
/** Upper bound on sleep, so one request cannot pin a worker for minutes. */
const MAX_SLEEP_MS = 60_000;

module.exports = {
  stock(sku) {
    return STOCK.get(sku) ?? 0;
  },

  async sleep(ms) {
    await delay(Math.min(Math.max(ms, 0), MAX_SLEEP_MS));
    return -ms;
  },
};
