// Probe: what a flood that never waits for its replies costs everyone else (issue 13).
//
//   node test/reliability/probes/refusal-flood.mjs [userspace,native,sockmap] [seconds=5] [flooders=6]
//
// Per transport, a real Server (raw codec, 2 workers, maxInFlightPerConnection 256, maxInFlight
// 1,024) in this thread; in a worker thread, `flooders` connections that each write requests of
// 100 µs (`nap`: blocks a worker without CPU) as fast as the socket takes them, never waiting
// for a reply (they read and count them), and one polite client that sends one request every
// 5 ms (200/s, open loop: latency from the intended send time). Bounded: `seconds` per
// transport, then every socket is closed. The flood and the polite client have a thread each.
// Prints, per transport, the polite client alone, then beside the flood: the server's refusals/s
// and served/s, what the flood wrote, the polite client's p50/p99 and refusals, and this
// thread's (the server's main thread) event-loop delay.
import { connect } from 'node:net';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { FrameSplitter, KmuxError, Server, decodeRawReply, encodeFrame, encodeRawRequest, rawCodec } from '@kmux/core';

const PER_CONNECTION = 256;
const MAX_IN_FLIGHT = 1024;
const NAP_US = 100;
const POLITE_EVERY_MS = 5;
const BATCH = 256;

if (isMainThread) await probe();
else if (workerData.role === 'flood') await flood(workerData);
else await polite(workerData);

async function probe() {
  const [transports = 'userspace,native,sockmap', seconds = '5', flooders = '6'] = process.argv.slice(2);
  const handler = fileURLToPath(new URL('../fixtures/raw-handler.mjs', import.meta.url));
  for (const transport of transports.split(',')) {
    const server = new Server({
      codec: rawCodec({ handler }),
      workers: 2,
      transport,
      maxInFlight: MAX_IN_FLIGHT,
      maxInFlightPerConnection: PER_CONNECTION,
      logger: { info() {}, warn() {}, error() {} },
    });
    const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
    // The polite client alone first, for its unloaded latency.
    for (const count of [0, Number(flooders)]) await measure(server, port, transport, count, Number(seconds));
    await server.close({ timeoutMs: 1000 });
  }
}

async function measure(server, port, transport, flooders, seconds) {
  const delay = monitorEventLoopDelay({ resolution: 5 });
  const floodThread = new Worker(fileURLToPath(import.meta.url), { workerData: { role: 'flood', port, flooders } });
  const exits = [once(floodThread, 'exit')];
  await once(floodThread, 'message'); // started
  delay.enable();
  const before = server.stats().requests;
  const politeThread = new Worker(fileURLToPath(import.meta.url), { workerData: { role: 'polite', port, seconds } });
  exits.push(once(politeThread, 'exit'));
  const [politeTally] = await once(politeThread, 'message');
  const after = server.stats().requests;
  delay.disable();
  floodThread.postMessage('stop');
  const [floodTally] = await once(floodThread, 'message');
  const measured = { flood: floodTally, polite: politeTally };
  const refused = (after.outcomes.overloaded ?? 0) - (before.outcomes.overloaded ?? 0);
  const served = (after.outcomes.ok ?? 0) - (before.outcomes.ok ?? 0);
  const row = {
    transport,
    flooders,
    'server refusals/s': Math.round(refused / seconds),
    'server served/s': Math.round(served / seconds),
    'flood wrote/s': Math.round(measured.flood.sent / seconds),
    'flood ok/s': Math.round(measured.flood.ok / seconds),
    'flood refused/s': Math.round(measured.flood.refused / seconds),
    'polite sent': measured.polite.sent,
    'polite ok': measured.polite.ok,
    'polite refused': measured.polite.refused,
    'polite refused why': measured.polite.why,
    'polite p50 ms': Number(measured.polite.p50.toFixed(2)),
    'polite p99 ms': Number(measured.polite.p99.toFixed(2)),
    'loop delay p99 ms': Number((delay.percentile(99) / 1e6).toFixed(1)),
    'loop delay max ms': Number((delay.max / 1e6).toFixed(1)),
  };
  console.log(JSON.stringify(row));
  await Promise.all(exits);
}

function percentile(values, p) {
  if (values.length === 0) return Number.NaN;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Counts the replies on `socket` into `tally`: ok, refused (overloaded), or other errors. */
function countReplies(socket, tally, onReply = () => {}) {
  const splitter = new FrameSplitter(1 << 20);
  socket.on('data', (chunk) =>
    splitter.push(chunk, (body) => {
      const id = body.readUInt32BE(0);
      try {
        decodeRawReply(body);
        tally.ok++;
      } catch (error) {
        if (!(error instanceof KmuxError)) throw error;
        if (error.kind === 'overloaded') tally.refused++;
        else tally.other++;
        tally.why ??= error.message;
      }
      onReply(id);
    }),
  );
}

async function open(port) {
  const socket = connect({ host: '127.0.0.1', port });
  socket.setNoDelay(true);
  socket.on('error', () => {});
  await once(socket, 'connect');
  return socket;
}

/** The flooding connections: as fast as each socket drains, until told to stop; posts what they sent and got. */
async function flood({ port, flooders }) {
  const cost = Buffer.alloc(4);
  cost.writeUInt32BE(NAP_US);
  const batch = Buffer.concat(Array.from({ length: BATCH }, (_, i) => encodeFrame(encodeRawRequest(i + 1, 'nap', cost))));
  const tally = { sent: 0, ok: 0, refused: 0, other: 0 };
  let stopped = false;
  const sockets = [];
  for (let i = 0; i < flooders; i++) {
    const socket = await open(port);
    sockets.push(socket);
    countReplies(socket, tally);
    // The next batch as soon as the socket took the last.
    const write = () => {
      if (stopped) return;
      tally.sent += BATCH;
      if (socket.write(batch)) setImmediate(write);
      else socket.once('drain', write);
    };
    write();
  }
  parentPort.postMessage('started');
  parentPort.once('message', () => {
    stopped = true;
    for (const socket of sockets) socket.destroy();
    parentPort.postMessage(tally);
    parentPort.close();
  });
}

/** One request every POLITE_EVERY_MS for `seconds`; posts its tally and latencies (from each intended send time). */
async function polite({ port, seconds }) {
  const tally = { sent: 0, ok: 0, refused: 0, other: 0 };
  const latencies = [];
  const socket = await open(port);
  const intended = new Map();
  countReplies(socket, tally, (id) => {
    const at = intended.get(id);
    intended.delete(id);
    if (at !== undefined) latencies.push(performance.now() - at);
  });
  const start = performance.now();
  let next = 0;
  const payload = Buffer.from('polite');
  while (performance.now() - start < seconds * 1000) {
    const due = start + next * POLITE_EVERY_MS;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const id = ++next;
    intended.set(id, due);
    tally.sent++;
    socket.write(encodeFrame(encodeRawRequest(id, 'work', payload)));
  }
  // Answers still owed count as their latency so far (a starved client shows).
  await new Promise((resolve) => setTimeout(resolve, 200));
  for (const at of intended.values()) latencies.push(performance.now() - at);
  socket.destroy();
  parentPort.postMessage({ ...tally, p50: percentile(latencies, 50), p99: percentile(latencies, 99) });
}
