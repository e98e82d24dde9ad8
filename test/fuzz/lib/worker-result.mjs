// What every worker-codec fuzz target checks first: handle() never throws and gives exactly
// { reply: Uint8Array | null, failed: boolean }.

export function assert(condition, message) {
  if (!condition) throw new Error(message);
}

/** Runs `codec.handle(body)`, awaiting it, and checks the shape of its result. */
export async function handleChecked(codec, body) {
  let result;
  try {
    result = await codec.handle(body, { deadline: Date.now() + 60_000 });
  } catch (error) {
    throw new Error(`handle() threw: ${error?.stack ?? error}`);
  }
  assert(result !== null && typeof result === 'object', `handle() gave ${result}`);
  assert(typeof result.failed === 'boolean', `failed is ${typeof result.failed}`);
  assert(result.reply === null || result.reply instanceof Uint8Array, `reply is ${typeof result.reply}`);
  return result;
}
