import { parseArgs } from 'node:util';
import { TRANSPORT_PREFERENCE, applyThreadSlice, ktlsSupport, probeTransports, selectTransport, describeTransport } from '@kmux/core';
import { withUsage } from '../usage.js';

const HELP = `usage: kmux probe [--json]

Tries the system calls each kmux transport needs (AF_KCM, kTLS per cipher and its
TLS 1.3 rekey, BPF, sockmap) and reports what this kernel offers, with the reason for
every "no".
"kTLS" says whether a TLS server's connections would move to the kernel's record
layer ('auto'), and with which ciphers; their frames are split in user space either way.`;

const mark = (ok: boolean): string => (ok ? 'yes' : 'no ');

export async function probeCommand(args: string[]): Promise<number> {
  const { values } = withUsage(HELP, () =>
    parseArgs({ args, strict: true, options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } }),
  );
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const probe = await probeTransports();
  const choice = await selectTransport('auto');
  const ktls = ktlsSupport();
  if (values.json) {
    console.log(JSON.stringify({ ...probe, auto: choice, ktls: { ...ktls, ciphers: [...ktls.ciphers] }, threadSlice: applyThreadSlice(100) }, null, 2));
    return 0;
  }
  const { kernel } = probe;
  if (kernel) {
    console.log(`kernel ${kernel.release}`);
    console.log(`  AF_KCM        ${mark(kernel.kcm.ok)} ${kernel.kcm.reason}`);
    console.log(`  kTLS (ULP)    ${mark(kernel.ktls.ulp.ok)} ${kernel.ktls.ulp.reason}`);
    for (const [cipher, { tx, rx }] of Object.entries(kernel.ktls.ciphers)) {
      const ok = tx.ok && rx.ok;
      console.log(`    ${cipher.padEnd(18)}${mark(ok)} ${ok ? 'TLS_TX and TLS_RX accepted' : (tx.ok ? rx : tx).reason}`);
    }
    // A TLS 1.3 KeyUpdate needs the next key in the kernel: Linux ≥ 6.14 (EBUSY before).
    console.log(`    ${'rekey'.padEnd(18)}${mark(kernel.ktls.rekey.ok)} ${kernel.ktls.rekey.reason}`);
    console.log(`  BPF           ${mark(kernel.bpf.ok)} ${kernel.bpf.reason}`);
    console.log(`  sockmap       ${mark(kernel.sockmap.insertTcp.ok)} ${kernel.sockmap.insertTcp.reason}`);
    console.log(`  CAP_BPF       ${mark(kernel.capabilities.bpf)}`);
    console.log(`  CAP_NET_ADMIN ${mark(kernel.capabilities.netAdmin)}`);
  } else if (!probe.addon.loaded) {
    console.log(`native addon not loaded: ${probe.addon.reason}`);
  }
  console.log('transports');
  for (const name of TRANSPORT_PREFERENCE) {
    const t = probe[name];
    console.log(`  ${name.padEnd(12)}${mark(t.available)} ${t.reason}`);
  }
  console.log(`auto picks: ${describeTransport(choice)}`);
  console.log(`kTLS         ${mark(ktls.available)} ${ktls.reason}`);
  const slice = applyThreadSlice(100);
  console.log(`EEVDF slice  ${mark(slice!.ok)} ${slice!.reason} (threadSliceUs; without it threads keep the kernel's default slice)`);
  console.log(`  TLS framing: user space, on the kTLS socket when handed off (KCM and sockmap cannot frame through kTLS)`);
  return 0;
}
