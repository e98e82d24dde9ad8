// KCM on top of a kTLS socket, as each kernel does it today (probes/ktls-kcm.c). kmux never
// builds this (TLS connections are framed in user space, server-tls.ts; `auto` never picks
// KCM for them): these tests record each kernel's behaviour so that the day one changes,
// the suite says so and docs/kernel-facts.md ("Per kernel") can be updated.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const series = process.env.KMUX_KERNEL_SERIES ?? '';

/** What each kernel does, as measured (docs/kernel-facts.md). */
interface Behaviour {
  /** A frame sent as two records: delivered whole, or with the first record's tail in it, or not at all. */
  readonly split: 'intact' | 'corrupt' | 'missing';
  /** 200 frames, one record each, into a KCM socket with the smallest receive buffer: how many arrive whole. */
  readonly rcvbufIntact: number;
  /**
   * The same with 8 frames a record, so that a full receive buffer stops KCM inside a record: all
   * 200 arrive, some are lost (the rest of the record is dropped: what 7.2 fixed), or none.
   */
  readonly rcvbufShared: 'all' | 'lost' | 'none';
  /** After an alert record, the next frame reaches KCM. */
  readonly afterControl: boolean;
  /** TLS_RX on a socket already in a sockmap: '' when accepted, else the errno (a kTLS socket is refused by every kernel here). */
  readonly rxInSockmap: string;
}

const BEHAVIOUR: Record<string, Behaviour> = {
  // rcvbufShared: KCM cut the ciphertext into 205 messages, none a frame sent.
  '6.1': { split: 'missing', rcvbufIntact: 0, rcvbufShared: 'none', afterControl: false, rxInSockmap: '' },
  // 48 of 200 arrived in the run measured.
  '6.12': { split: 'corrupt', rcvbufIntact: 200, rcvbufShared: 'lost', afterControl: false, rxInSockmap: '' },
  // 7.2: "tls: reject the combination of TLS and sockmap", "tls: Re-present partially-consumed records in tls_sw_read_sock()".
  '7.3': { split: 'corrupt', rcvbufIntact: 200, rcvbufShared: 'all', afterControl: false, rxInSockmap: 'EINVAL' },
};

let dir = '';
let probe = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'kmux-ktls-kcm-'));
  probe = join(dir, 'ktls-kcm');
  execFileSync('cc', ['-O2', '-Wall', '-o', probe, fileURLToPath(new URL('./probes/ktls-kcm.c', import.meta.url))]);
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(...args: string[]): Record<string, unknown> {
  const out = execFileSync(probe, args, { encoding: 'utf8', timeout: 60_000 }).trim();
  console.log(`### ${series} ktls-kcm ${args.join(' ')}: ${out}`);
  return JSON.parse(out) as Record<string, unknown>;
}

describe(`kernel ${series}: KCM over kTLS (TLS 1.3 AES-GCM-128), what this kernel does`, () => {
  const expected = BEHAVIOUR[series];

  it('has a recorded behaviour for this kernel series', () => {
    expect(expected, `add kernel ${series} to BEHAVIOUR`).toBeDefined();
  });

  it(`a frame split over two TLS records comes out ${expected?.split}; the bytes at the boundary hold no kernel memory`, () => {
    for (const [head, payload] of [['10', '59'], ['1000', '8000']] as const) {
      const result = run('split', '10', head, payload);
      expect(result[expected!.split]).toBe(10);
      // strparser copies the first record's content type and 16 bytes of tag space into the
      // message. Zero today on every kernel here; non-zero would be kernel memory in user space.
      expect(result.tagSpaceNonZero).toBe(0);
      if (expected!.split === 'corrupt') expect(result.boundary).toBe(`17${'00'.repeat(16)}`);
    }
  });

  it(`the KCM socket's receive buffer filling, a frame per record: ${expected?.rcvbufIntact} of 200 frames arrive`, () => {
    expect(run('rcvbuf')).toMatchObject({ sent: 200, intact: expected!.rcvbufIntact });
  });

  const shared = { all: 'all 200 frames arrive', lost: 'frames are lost', none: 'no frame arrives' } as const;
  it(`the KCM socket's receive buffer filling, 8 frames per record: ${expected ? shared[expected.rcvbufShared] : ''}`, () => {
    const { perRecord, sent, intact } = run('rcvbuf', '8') as { perRecord: number; sent: number; intact: number };
    expect({ perRecord, sent }).toEqual({ perRecord: 8, sent: 200 });
    const seen = intact === 200 ? 'all' : intact === 0 ? 'none' : 'lost';
    expect(seen, `${intact} of 200 arrived`).toBe(expected!.rcvbufShared);
  });

  it(`a control record ${expected?.afterControl ? 'does not stall' : 'stalls'} KCM, silently`, () => {
    expect(run('control')).toMatchObject({ before: expected!.split !== 'missing', after: expected!.afterControl, kcmError: '' });
  });

  it(`sockmap refuses a kTLS socket; kTLS on a socket in a sockmap is ${expected?.rxInSockmap ? 'refused' : 'accepted'}`, () => {
    expect(run('sockmap')).toEqual({ case: 'sockmap', insertKtls: 'EINVAL', ulpInSockmap: '', rxInSockmap: expected!.rxInSockmap });
  });
});
