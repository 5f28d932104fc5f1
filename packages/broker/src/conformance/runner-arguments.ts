import { parseArgs } from 'node:util';

export interface RunnerArguments {
  readonly port: number;
  /** Topic filters `authorizeSubscribe` refuses (0x80, which 3.1.1 and 5 clients both understand). */
  readonly denySubscribe: readonly string[];
  readonly tls: { readonly caFile: string; readonly certFile: string; readonly keyFile: string } | undefined;
  /** Also listen on ::1. */
  readonly ipv6: boolean;
}

export class UsageError extends Error {}

export const usage = `usage: npm run broker:conformance -- --port N [--deny-subscribe FILTER]... [--ipv6]
                                   [--tls-ca FILE --tls-cert FILE --tls-key FILE]
Serves the bare broker engine with allow-all hooks on 127.0.0.1 (and ::1 with --ipv6), refusing
any non-loopback client. With the three --tls-* options it serves mutual TLS (client certificate
required) instead of plain TCP. Port 0 picks a free port; the URL is printed once listening.`;

/** Parses the runner's command line; throws UsageError with the reason on bad usage. */
export function parseRunnerArguments(argv: readonly string[]): RunnerArguments {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        port: { type: 'string' },
        'deny-subscribe': { type: 'string', multiple: true },
        'tls-ca': { type: 'string' },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        ipv6: { type: 'boolean' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const port = Number(values.port);
  if (values.port === undefined || !/^\d+$/.test(values.port) || port > 65_535) throw new UsageError('--port needs a port number from 0 to 65535');
  const tlsFiles = [values['tls-ca'], values['tls-cert'], values['tls-key']];
  const given = tlsFiles.filter((file) => file !== undefined).length;
  if (given !== 0 && given !== 3) throw new UsageError('--tls-ca, --tls-cert and --tls-key go together');
  const [caFile, certFile, keyFile] = tlsFiles as [string, string, string];
  return {
    port,
    denySubscribe: values['deny-subscribe'] ?? [],
    tls: given === 3 ? { caFile, certFile, keyFile } : undefined,
    ipv6: values.ipv6 === true,
  };
}
