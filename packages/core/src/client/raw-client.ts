import { rawClientCodec } from '../codec/raw.js';
import { decodeRawReply, encodeRawRequest } from '../codec/raw-wire.js';
import { Client, type ClientOptions, type ClientTlsState, type RequestOptions } from './client.js';

/** Client for servers using `rawCodec`: `call(method, payload)` resolves with the reply payload. */
export class RawClient {
  private readonly client: Client;
  private nextId = 0;

  constructor(options: Omit<ClientOptions, 'codec'>) {
    this.client = new Client({ ...options, codec: rawClientCodec });
  }

  /** With TLS: whether the connection runs its records in the kernel (kTLS), or why not. */
  get tls(): ClientTlsState | null {
    return this.client.tls;
  }

  connect(): Promise<void> {
    return this.client.connect();
  }

  /** Rejects with a KmuxError whose `kind` is the server's error (overloaded, deadline_exceeded, …). */
  async call(method: string, payload: Uint8Array | string, options?: RequestOptions): Promise<Buffer> {
    this.nextId = (this.nextId + 1) >>> 0;
    const bytes = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
    const reply = await this.client.request(this.nextId, encodeRawRequest(this.nextId, method, bytes), options);
    return decodeRawReply(reply);
  }

  close(): void {
    this.client.close();
  }
}
