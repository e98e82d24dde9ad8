// The Pricing service implementation that kmux loads in every worker thread
// (see pricing.proto). Each export handles the method of the same name in lowerCamelCase;
// it gets the decoded request and returns the response as a plain object or a message.
import { pbkdf2Sync } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { RpcError, Status } from '@kmux/protobuf';

const CURRENCY = 'EUR';
/** Upper bound on signing work, so one request cannot pin a worker for minutes. */
const MAX_SIGNING_ROUNDS = 1_000_000;
/** Upper bound on sleep, for the same reason. */
const MAX_SLEEP_MS = 60_000;
const MAX_QUANTITY = 10_000;
/** Totals are uint32 cents on the wire. */
const MAX_TOTAL_CENTS = 0xffffffff;
const SIGNATURE_SALT = 'kmux-example-quote';

const CATALOGUE = new Map(
  [
    { sku: 'kb-001', title: 'Mechanical keyboard', unitPriceCents: 8900 },
    { sku: 'ms-002', title: 'Wireless mouse', unitPriceCents: 2900 },
    { sku: 'mn-003', title: '27" monitor', unitPriceCents: 24900 },
  ].map((item) => [item.sku, item]),
);

function itemOf(sku) {
  const item = CATALOGUE.get(sku);
  if (!item) throw new RpcError(Status.NOT_FOUND, `no item with sku '${sku}'`);
  return item;
}

/** Volume discount in percent: 5 from 10 pieces, 12 from 100. */
function discountPercent(quantity) {
  if (quantity >= 100) return 12;
  return quantity >= 10 ? 5 : 0;
}

export function getPrice({ sku }) {
  const { title, unitPriceCents } = itemOf(sku);
  return { sku, title, unitPriceCents, currency: CURRENCY };
}

export function quoteBasket({ lines, signingRounds }) {
  if (lines.length === 0) throw new RpcError(Status.INVALID_ARGUMENT, 'the basket is empty');
  if (signingRounds < 1 || signingRounds > MAX_SIGNING_ROUNDS) {
    throw new RpcError(Status.INVALID_ARGUMENT, `signing_rounds must be 1..${MAX_SIGNING_ROUNDS}, got ${signingRounds}`);
  }
  const quoted = lines.map(({ sku, quantity }) => {
    if (quantity < 1 || quantity > MAX_QUANTITY) {
      throw new RpcError(Status.INVALID_ARGUMENT, `quantity of '${sku}' must be 1..${MAX_QUANTITY}, got ${quantity}`);
    }
    const { unitPriceCents } = itemOf(sku);
    const discount = discountPercent(quantity);
    const lineTotalCents = Math.floor((unitPriceCents * quantity * (100 - discount)) / 100);
    return { sku, quantity, unitPriceCents, discountPercent: discount, lineTotalCents };
  });
  const totalCents = quoted.reduce((sum, line) => sum + line.lineTotalCents, 0);
  if (totalCents > MAX_TOTAL_CENTS) throw new RpcError(Status.OUT_OF_RANGE, `the total of ${totalCents} cents is too large to quote`);
  const signed = `${quoted.map((line) => `${line.sku}:${line.quantity}:${line.lineTotalCents}`).join(';')}=${totalCents}`;
  const signature = pbkdf2Sync(signed, SIGNATURE_SALT, signingRounds, 32, 'sha256');
  return { lines: quoted, totalCents, currency: CURRENCY, signature };
}

export function echo(request) {
  return request;
}

export async function sleep({ ms }) {
  const bounded = Math.min(ms, MAX_SLEEP_MS);
  await delay(bounded);
  return { ms: bounded };
}
