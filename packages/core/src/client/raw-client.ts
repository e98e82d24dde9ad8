import { rawClientCodec } from '../codec/raw.js';
import { decodeRawReply, encodeRawRequest } from '../codec/raw-wire.js';
import type { BalancedClient } from './balanced-client.js';
import { createChannel, type ChannelOptions } from './channel.js';
import { Client, type ClientTlsState, type RequestOptions } from './client.js';

/**
 * Client for servers using `rawCodec`: `call(method, payload)` resolves with the reply payload.
 * Give it `port` (and `host`) for one server, or `servers` to spread calls over several (BalancedClient).
 */
export class RawClient {
  private readonly channel: Client | BalancedClient;
  private nextId = 0;

  constructor(options: Omit<ChannelOptions, 'codec'>) {
    this.channel = createChannel({ ...options, codec: rawClientCodec });
  }

  /** With TLS to one server: whether the connection runs its records in the kernel (kTLS), or why not; null over `servers`. */
  get tls(): ClientTlsState | null {
    return this.channel instanceof Client ? this.channel.tls : null;
  }

  connect(): Promise<void> {
    return this.channel.connect();
  }

  /** Rejects with a KmuxError whose `kind` is the server's error (overloaded, deadline_exceeded, …). */
  async call(method: string, payload: Uint8Array | string, options?: RequestOptions): Promise<Buffer> {
    this.nextId = (this.nextId + 1) >>> 0;
    const bytes = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
    const reply = await this.channel.request(this.nextId, encodeRawRequest(this.nextId, method, bytes), options);
    return decodeRawReply(reply);
  }

  close(): void {
    this.channel.close();
  }
}
