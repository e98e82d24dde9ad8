#!/usr/bin/env node
/**
 * kmux against its peers: every scenario against every server that can run it, each
 * server in its own process, driven by the native load generator (or grpc-js clients) in
 * another. Prints a table per scenario, writes bench-results/<stamp>/results.json and
 * report.html.
 */
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { measureThreadScaling, type ThreadScaling } from './ceiling/thread-scaling.js';
import { PEERS, peerUnavailable, type PeerName } from './peers/spawn-peer.js';
import { compareScenario, type Comparison } from './report/comparison.js';
import { writeResults } from './report/results-file.js';
import { scenarioTable } from './report/table.js';
import { BUSY_MACHINE_PERCENT, cleanRounds, medianRun, type BenchRow } from './run/median-run.js';
import { runRounds } from './run/rounds.js';
import { benchScenarios, CPU_CALL_MICROS, HASH_INPUT_BYTES, MIXED_RATE_PER_SECOND } from './scenarios.js';
import { calibrateHashRounds } from './service/calibrate.js';

const REPO_ROOT = resolve(fileURLToPath(import.meta.url), '../../../..');

const USAGE = `usage: node packages/bench/dist/cli.js [options]
  --quick              short runs (0.5 s warm-up, 1 s measured, 2,000 idle connections): the whole
                       bench in under 2 minutes
  --duration S         measured seconds per run (default 10)
  --warmup S           discarded warm-up seconds per run (default 3)
  --workers N          worker threads of kmux, the piscina pool and the C server (default 2)
  --transport T        transport of the 'kmux' servers: auto (default), userspace, native, sockmap, kcm
  --repeat N           run every server × scenario N times, interleaved, and report the
                       median among the rounds no other process disturbed (default 1)
  --scenarios a,b      only these scenarios (default: all)
  --servers a,b        only these servers: ${Object.keys(PEERS).join(', ')}
                       (default: every one this machine runs, without duplicating what 'kmux' picks)
  --idle-connections N connections of the idle scenario (default 10000; 2000 with --quick)
  --mixed-rate N       req/s every server is offered in the fixed-rate mixed scenarios (default ${MIXED_RATE_PER_SECOND})
  --kmux-options JSON  more ServerOptions for the kmux servers, e.g. '{"threadSliceUs":false}'
  --pin                generator on the last CPU, servers on the others (see the README first)
  --cpu-prof DIR       write V8 CPU profiles of every server thread into DIR
  --out DIR            results directory (default <repo>/bench-results)
  --publish            also copy the results and report to <out>/latest (the copy the README links)`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      workers: { type: 'string', default: '2' },
      transport: { type: 'string', default: 'auto' },
      repeat: { type: 'string', default: '1' },
      scenarios: { type: 'string' },
      servers: { type: 'string' },
      'idle-connections': { type: 'string' },
      'mixed-rate': { type: 'string' },
      'kmux-options': { type: 'string' },
      pin: { type: 'boolean', default: false },
      'cpu-prof': { type: 'string' },
      out: { type: 'string', default: resolve(REPO_ROOT, 'bench-results') },
      publish: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const settings = {
    durationSeconds: positive('--duration', values.duration ?? (values.quick ? '1' : '10')),
    warmupSeconds: positive('--warmup', values.warmup ?? (values.quick ? '0.5' : '3'), true),
    probeSeconds: values.quick ? 1 : 3,
    workers: count('--workers', values.workers),
    transport: values.transport,
    kmuxOptions: values['kmux-options'] === undefined ? undefined : (JSON.parse(values['kmux-options']) as Record<string, unknown>),
    pin: values.pin,
    cpuProfileDir: values['cpu-prof'] ? resolve(values['cpu-prof']) : undefined,
  };
  const repeat = count('--repeat', values.repeat);
  const servers = values.servers === undefined ? await defaultServers() : await chosenServers(values.servers);
  const rounds = calibrateHashRounds(randomBytes(HASH_INPUT_BYTES), CPU_CALL_MICROS);
  const allScenarios = benchScenarios(
    rounds,
    count('--idle-connections', values['idle-connections'] ?? (values.quick ? '2000' : '10000')),
    count('--mixed-rate', values['mixed-rate'] ?? String(MIXED_RATE_PER_SECOND)),
  );
  const names = pick('--scenarios', values.scenarios, allScenarios.map((s) => s.name));
  const scenarios = allScenarios.filter((s) => names.includes(s.name));

  const startedAt = new Date();
  const measureCeiling = () => measureThreadScaling(settings.workers, rounds, values.quick ? 0.5 : 3);
  let ceiling = await measureCeiling();
  console.error(describeCeiling(ceiling));
  const { runs, skipped } = await runRounds(scenarios, servers, repeat, settings);
  if (ceiling.otherCpuPercent > BUSY_MACHINE_PERCENT) {
    // Disturbed before the runs: try again after them and keep the cleaner reading.
    const again = await measureCeiling();
    if (again.otherCpuPercent < ceiling.otherCpuPercent) ceiling = again;
  }
  const rows: BenchRow[] = [];
  const comparisons: Comparison[] = [];
  const tables: string[] = [];
  for (const scenario of scenarios) {
    const runsOf = (server: PeerName) => runs.filter((r) => r.scenario === scenario.name && r.server === server);
    const ran = servers.filter((s) => runsOf(s).length > 0);
    const clean = cleanRounds(ran.map(runsOf));
    const scenarioRows = ran.map((server) => medianRun(runsOf(server), clean));
    const scenarioComparisons = compareScenario(scenario, runsOf, ran, clean);
    rows.push(...scenarioRows);
    comparisons.push(...scenarioComparisons);
    tables.push(`${scenario.name}: ${scenario.description}\n${scenarioTable(scenario, scenarioRows, scenarioComparisons)}`);
  }
  const failedRuns = runs.filter((r) => r.fatal !== null || r.lost > 0);

  console.log(`\n${tables.join('\n\n')}\n`);
  console.log('vs X: how much better kmux did than X on the scenario\'s measure (req/s; the fast calls\' p99; memory per connection);');
  console.log('stock and piscina set TCP_NODELAY on every connection (as kmux does), so their tails are not Nagle\'s.');
  console.log(`"~": no round was free of other load on the machine.\n\n${describeCeiling(ceiling)}`);
  for (const s of skipped) console.log(`not run: ${s.server} × ${s.scenario} (${s.reason})`);
  const written = writeResults(
    values.out,
    startedAt,
    { settings: { ...settings, repeat, servers }, ceiling, scenarios, rows, runs: repeat > 1 ? runs : [], comparisons, skipped },
    values.publish,
  );
  console.log(`\nresults: ${written.json}\nreport:  ${written.html}`);
  for (const r of failedRuns) console.error(`${r.server} × ${r.scenario}: ${r.fatal ?? `${r.lost} requests lost`}`);
  return failedRuns.length > 0 ? 1 : 0;
}

/**
 * Every server this machine can run, less the kmux transport variant that merely repeats
 * what 'kmux' (transport auto: KCM where the kernel has it, else user space) picks.
 */
async function defaultServers(): Promise<PeerName[]> {
  const kcm = (await peerUnavailable('kmux-kcm')) === null;
  const servers: PeerName[] = [];
  for (const name of Object.keys(PEERS) as PeerName[]) {
    if (name === (kcm ? 'kmux-kcm' : 'kmux-userspace')) continue;
    const why = await peerUnavailable(name);
    if (why === null) servers.push(name);
    else console.error(`not running ${name}: ${why}`);
  }
  return servers;
}

async function chosenServers(list: string): Promise<PeerName[]> {
  const servers = pick('--servers', list, Object.keys(PEERS)) as PeerName[];
  for (const name of servers) {
    const why = await peerUnavailable(name);
    if (why !== null) throw new Error(`--servers: ${name} cannot run here: ${why}`);
  }
  return servers;
}

function describeCeiling(c: ThreadScaling): string {
  const disturbed = c.otherCpuPercent > BUSY_MACHINE_PERCENT ? ` [disturbed: other load ${Math.round(c.otherCpuPercent)}% of a core]` : '';
  return (
    `ceiling: ${c.threads} threads run hashRounds ${c.ratio.toFixed(2)}× as fast as 1 with no server ` +
    `(${Math.round(c.oneThreadCallsPerSecond)} → ${Math.round(c.allThreadsCallsPerSecond)} calls/s): ` +
    `the most any server can gain over a single-threaded one in cpu-1ms on this machine${disturbed}`
  );
}

function positive(flag: string, text: string, allowZero = false): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0 || (value === 0 && !allowZero)) {
    throw new Error(`${flag} needs a positive number, got ${text}`);
  }
  return value;
}

function count(flag: string, text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${flag} needs a positive integer, got ${text}`);
  return value;
}

function pick(flag: string, list: string | undefined, known: readonly string[]): string[] {
  if (list === undefined) return [...known];
  const chosen = list.split(',').filter(Boolean);
  const unknown = chosen.filter((name) => !known.includes(name));
  if (unknown.length > 0) throw new Error(`${flag}: unknown ${unknown.join(', ')} (known: ${known.join(', ')})`);
  return chosen;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  },
);
