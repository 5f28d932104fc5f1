import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The `fleetward` command as users run it (`npm test` builds the code it loads first). */
export const CLI = fileURLToPath(new URL('../../bin/fleetward.js', import.meta.url));

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** stdout parsed as JSON (for --json runs), or undefined. */
  readonly json: unknown;
}

/** Environment for a CLI run: the test's FLEETWARD_* variables and nothing else from the namespace. */
export function cliEnv(env: Readonly<Record<string, string>>): NodeJS.ProcessEnv {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('FLEETWARD_')));
  return { ...clean, ...env };
}

export function fleetward(args: readonly string[], env: Readonly<Record<string, string>>, cwd?: string): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: cliEnv(env), ...(cwd && { cwd }) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      let json: unknown;
      try {
        json = JSON.parse(stdout);
      } catch {
        json = undefined;
      }
      resolve({ code, stdout, stderr, json });
    });
  });
}

export interface ReadyLine {
  readonly event: 'ready';
  readonly apiUrl: string;
  readonly caFile: string;
  readonly home: string;
  readonly bootstrapToken: { token: string; expiresAt: string } | null;
}

export interface RunningServe {
  readonly child: ChildProcess;
  readonly ready: ReadyLine;
  output(): { stdout: string; stderr: string };
  /** Sends the signal and resolves with the exit code (or, when killed by a signal, its name and stderr). */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

/** Starts `fleetward serve --json` and waits for its ready line (or its exit). */
export function serve(env: Readonly<Record<string, string>>, args: readonly string[] = [], cwd?: string): Promise<RunningServe> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'serve', '--json', ...args], { env: cliEnv(env), ...(cwd && { cwd }) });
    let stdout = '';
    let stderr = '';
    // Killed by a signal shows as the signal's name, so a failing exit-code assertion says which.
    // 'close' (not 'exit'): it comes after the output streams end, so stderr is complete.
    const exited = new Promise<number | string>((done) => child.on('close', (code, signal) => done(code ?? `killed by ${signal ?? 'unknown'}; stderr: ${stderr.slice(-2000)}`)));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      const line = stdout.split('\n').find((l) => l.includes('"event":"ready"'));
      if (line) {
        resolve({
          child,
          ready: JSON.parse(line) as ReadyLine,
          output: () => ({ stdout, stderr }),
          stop: (signal = 'SIGTERM') => {
            child.kill(signal);
            return exited;
          },
        });
      }
    });
    void exited.then((code) => reject(new Error(`serve exited with ${code} before it was ready:\n${stdout}\n${stderr}`)));
  });
}
