import { catalogHandler } from './catalog.js';

type HashRounds = (data: Buffer, rounds: number, callback: (error: unknown, digest?: Buffer) => void) => void;

const PROBE_ROUNDS = 1000;
const WARMUP_CALLS = 20;
const CALLS_PER_SAMPLE = 10;
const SAMPLES = 7;

/**
 * How many `hashRounds` rounds over `data` cost `targetMicros` of CPU on this machine,
 * measured by calling the example handler itself in this process. It counts CPU time
 * rather than wall time, including the garbage the handler leaves (a hash object per
 * round), and keeps the cheapest of several samples: other load on the machine (cache and
 * host contention) inflates CPU time too, never deflates it.
 */
export function calibrateHashRounds(data: Buffer, targetMicros: number): number {
  const hashRounds = catalogHandler.hashRounds as unknown as HashRounds;
  const call = (): void =>
    hashRounds(data, PROBE_ROUNDS, (error) => {
      if (error) throw error;
    });
  for (let i = 0; i < WARMUP_CALLS; i++) call();
  let microsPerRound = Number.POSITIVE_INFINITY;
  for (let sample = 0; sample < SAMPLES; sample++) {
    const start = process.cpuUsage();
    for (let i = 0; i < CALLS_PER_SAMPLE; i++) call();
    const used = process.cpuUsage(start);
    microsPerRound = Math.min(microsPerRound, (used.user + used.system) / (CALLS_PER_SAMPLE * PROBE_ROUNDS));
  }
  return Math.max(1, Math.round(targetMicros / microsPerRound));
}
