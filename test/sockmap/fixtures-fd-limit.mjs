// Run by sockmap-fd-limit.test.ts under `ulimit -n` (a low fd limit): a sockmap server and
// CLIENTS connections in this process, each sending one request and keeping its connection
// open, so that sockmap's per-connection socketpairs run the process out of fds. Prints
// what was answered and what the server counted, as JSON.
import net from 'node:net';
import { Server, encodeFrame, encodeRawRequest, rawCodec } from '@kmux/core';

const [handlers, clientsArg] = process.argv.slice(2);
const CLIENTS = Number(clientsArg);
const warnings = [];
const logger = { info() {}, warn: (line) => warnings.push(line), error: (line) => warnings.push(line) };
const server = new Server({ codec: rawCodec({ handler: handlers }), workers: 2, transport: 'sockmap', logger });
const { port } = await server.listen({ host: '127.0.0.1', port: 0 });

function call(id) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let pending = Buffer.alloc(0);
    socket.on('error', (error) => resolve({ socket, reply: `error ${error.code}` }));
    socket.on('close', () => resolve({ socket, reply: 'closed' }));
    socket.on('data', (chunk) => {
      pending = Buffer.concat([pending, chunk]);
      if (pending.length >= 4 && pending.length >= 4 + pending.readUInt32BE(0)) resolve({ socket, reply: 'answered' });
    });
    socket.write(encodeFrame(encodeRawRequest(id, 'echo', Buffer.from(`r${id}`))));
  });
}

const results = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => call(i + 1)));
const stats = server.stats();
for (const { socket } of results) socket.destroy();
await server.close();
console.log(
  JSON.stringify({
    answered: results.filter((r) => r.reply === 'answered').length,
    fallbacks: stats.kernel?.userspaceFallbacks ?? 0,
    connectionErrors: stats.connectionErrors,
    warnings,
  }),
);
