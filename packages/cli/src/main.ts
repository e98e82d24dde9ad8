#!/usr/bin/env node
import { probeCommand } from './commands/probe.js';
import { serveCommand } from './commands/serve.js';
import { UsageError } from './usage.js';

const USAGE = `usage: kmux <command> [options]

commands:
  serve   serve a Thrift or protobuf service over worker threads
  probe   tell what this kernel offers kmux (KCM, kTLS, sockmap, BPF, privileges)

kmux <command> --help shows the command's options.`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return serveCommand(rest);
    case 'probe':
      return probeCommand(rest);
    case undefined:
    case '-h':
    case '--help':
      console.log(USAGE);
      return command === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command '${command}'\n\n${USAGE}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof UsageError) {
      console.error(`kmux: ${error.message}`);
      process.exitCode = 2;
    } else {
      console.error(`kmux: ${error instanceof Error ? error.message : String(error)}`);
      process.exitCode = 1;
    }
  },
);
