// The kernel's kTLS record layer emulated in user space with node:crypto, for the host
// (no CONFIG_TLS): given a handoff plan, it reads and writes raw records on the fd
// exactly as TLS_RX / TLS_TX would with those keys and sequence numbers. If the plan
// is wrong by one sequence number or one key byte, the peer or this emulation fails.
import { nativeKtls, POLL_READABLE, type NativeFdPoll } from '@kmux/native';
import { recordKeysOf, type KtlsPlan } from '../../src/tls/ktls-plan.js';
import { openRecord, sealRecord, type OpenedRecord, type RecordKeys } from '../../src/tls/record-crypto.js';
import { RecordSplitter } from '../../src/tls/record.js';

export class EmulatedKtls {
  readonly records: OpenedRecord[] = [];
  private readonly rx: RecordKeys;
  private readonly tx: RecordKeys;
  private rxSeq: bigint;
  private txSeq: bigint;
  private readonly firstTxSeq: bigint;
  private readonly firstExplicitNonce: bigint;
  private readonly splitter = new RecordSplitter();
  private waiters: Array<() => void> = [];
  private failure: Error | null = null;

  private readonly poll: NativeFdPoll;

  constructor(
    private readonly fd: number,
    plan: KtlsPlan,
  ) {
    this.rx = recordKeysOf(plan.suite, plan.rx);
    this.tx = recordKeysOf(plan.suite, plan.tx);
    this.rxSeq = plan.rxSeq;
    this.txSeq = plan.txSeq;
    this.firstTxSeq = plan.txSeq;
    this.firstExplicitNonce = Buffer.from(plan.tx.iv).readBigUInt64BE(0);
    this.poll = new (nativeKtls().FdPoll)(fd, () => this.onReadable());
    this.poll.start(POLL_READABLE);
  }

  private onReadable(): void {
    const buffer = Buffer.alloc(65536);
    for (;;) {
      const r = nativeKtls().recvRecord(this.fd, buffer);
      if (r === null || r.bytes === 0) break;
      this.splitter.push(Buffer.from(buffer.subarray(0, r.bytes)), (record) => {
        const opened = openRecord(this.rx, this.rxSeq, record.bytes);
        if (!opened) this.failure ??= new Error(`record at rx seq ${this.rxSeq} does not decrypt`);
        else this.records.push(opened);
        this.rxSeq++;
      });
    }
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves with the application data once `bytes` of it have arrived (other record types are kept in `records`). */
  async readData(bytes: number, timeoutMs = 10_000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.failure) throw this.failure;
      const data = Buffer.concat(this.records.filter((r) => r.type === 23).map((r) => r.plaintext));
      if (data.length >= bytes) return data;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${bytes} bytes, have ${data.length}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 50);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Sends one record as the kernel's TLS_TX would (TLS 1.2 AES-GCM: explicit nonce counting up from plan.tx.iv). */
  send(type: number, plaintext: Buffer): void {
    const explicit = Buffer.alloc(8);
    explicit.writeBigUInt64BE(this.firstExplicitNonce + (this.txSeq - this.firstTxSeq));
    const record = sealRecord(this.tx, this.txSeq++, type, plaintext, explicit);
    const sent = nativeKtls().send(this.fd, record);
    if (sent !== record.length) throw new Error(`short send: ${sent} of ${record.length}`);
  }

  close(): void {
    this.poll.close();
    nativeKtls().closeFd(this.fd);
  }
}
