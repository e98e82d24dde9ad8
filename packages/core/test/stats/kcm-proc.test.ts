import { describe, expect, it } from 'vitest';
import { parseKcmProcStats } from '../../src/stats/kcm-proc.js';

// /proc/net/kcm_stats as Debian's 6.1 kernel prints it (from the kernel lab's run).
const SAMPLE = `      MUX      RX-Msgs    RX-Bytes         TX-Msgs    TX-Bytes         TX-Retries Attach     Unattach   UnattchRsvd RX-RdyDrops
               14         60211            1          24               0          1          0          0          0
      Psock    RX-Msgs    RX-Bytes         TX-Msgs    TX-Bytes         Reserved   Unreserved RX-Aborts  RX-Intr    RX-Unrecov RX-MemFail RX-NeedMor RX-BadLen  RX-TooBig  RX-Timeout TX-Aborts
               14         130215           1          24               1          1          0          0          0          0          0          0          2          0          0
`;

describe('parseKcmProcStats', () => {
  it('reads the mux and psock blocks by the kernel column names', () => {
    const stats = parseKcmProcStats(SAMPLE);
    expect(stats.mux).toMatchObject({ 'RX-Msgs': 14, 'RX-Bytes': 60211, 'TX-Msgs': 1, Attach: 1, 'RX-RdyDrops': 0 });
    expect(stats.psock).toMatchObject({ 'RX-Msgs': 14, 'RX-Bytes': 130215, 'RX-TooBig': 2, 'TX-Aborts': 0 });
    expect(Object.keys(stats.psock)).toHaveLength(15);
  });

  it('gives empty blocks for text without them', () => {
    expect(parseKcmProcStats('')).toEqual({ mux: {}, psock: {} });
  });
});
