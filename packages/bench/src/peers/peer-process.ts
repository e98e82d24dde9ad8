import type { PeerCloseRequest, PeerMessage, PeerProtocol, PeerSettings } from './peer-messages.js';

/** How long an orphaned peer may take to close its server before it exits anyway. */
const ORPHAN_CLOSE_MS = 5000;

/** A server started inside a peer child process. */
export interface PeerServer {
  readonly port: number;
  readonly transport: string | null;
  readonly protocol: PeerProtocol;
  /** The process serving the port, if not this one. */
  readonly pid?: number;
  /** Closes the server; returns requests per worker thread, or null without workers. */
  close(): Promise<number[] | null>;
}

/**
 * Body of a peer child process: starts the server on a loopback port, reports `ready`,
 * and on the bench's `close` request shuts it down, reports, and exits.
 */
export function runPeer(start: (settings: PeerSettings) => Promise<PeerServer>): void {
  const settings = JSON.parse(process.argv[2] ?? '{}') as PeerSettings;
  const send = (message: PeerMessage): Promise<void> =>
    new Promise((resolve, reject) => process.send!(message, (error: Error | null) => (error ? reject(error) : resolve())));

  start(settings).then(
    async (server) => {
      // The bench that started this peer is gone (it crashed, or a test timed out and its
      // process ended): nobody will ever ask it to close, so it closes itself.
      process.once('disconnect', () => {
        setTimeout(() => process.exit(1), ORPHAN_CLOSE_MS).unref();
        void server.close().finally(() => process.exit(0));
      });
      process.once('message', async (_request: PeerCloseRequest) => {
        const workerRequests = await server.close();
        await send({ type: 'closed', workerRequests });
        // Exit even if a client connection or timer still holds the loop open.
        process.exit(0);
      });
      await send({
        type: 'ready',
        port: server.port,
        transport: server.transport,
        pid: server.pid ?? process.pid,
        protocol: server.protocol,
      });
    },
    (error: unknown) => {
      console.error('peer failed to start:', error);
      process.exit(1);
    },
  );
}
