import { readFile } from 'node:fs/promises';
import { startConformanceServer } from './conformance-server.js';
import { parseRunnerArguments, usage, UsageError } from './runner-arguments.js';

/**
 * `npm run broker:conformance -- --port N [--deny-subscribe FILTER]`: the bare engine for
 * independent MQTT test suites and benchmarks. Exits 0 on SIGTERM or SIGINT, 2 on bad usage.
 */
async function main(argv: readonly string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(usage);
    return;
  }
  const args = parseRunnerArguments(argv);
  const tls =
    args.tls === undefined
      ? undefined
      : { ca: await readFile(args.tls.caFile), cert: await readFile(args.tls.certFile), key: await readFile(args.tls.keyFile) };
  const server = await startConformanceServer({ port: args.port, denySubscribe: args.denySubscribe, tls, ipv6: args.ipv6 });
  for (const url of server.urls) console.log(url);
  const stop = (): void => {
    server.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof UsageError) {
    console.error(`error: ${error.message}\n${usage}`);
    process.exit(2);
  }
  console.error(`error: ${(error as Error).message}`);
  process.exit(1);
});
